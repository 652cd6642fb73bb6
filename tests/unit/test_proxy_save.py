from kins.render.proxy.iptables import base_chain_jumps
from kins.render.proxy.restore import parse_rule, split_args
from kins.render.proxy.save import format_rule, render_save, save_string


def _save(chain: str, args: str) -> str:
    return format_rule(parse_rule(chain, split_args(args)))


def test_canonical_argument_order() -> None:
    spn = "default/data-product:data-product"
    assert _save(
        "KUBE-SERVICES",
        f'-m comment --comment "{spn} cluster IP" -m tcp -p tcp -d 10.254.116.224 --dport 50051'
        " -j KUBE-SVC-45TXGSBX3LGQQRTB",
    ) == (
        f'-A KUBE-SERVICES -d 10.254.116.224/32 -p tcp -m comment --comment "{spn} cluster IP" -m tcp --dport 50051'
        " -j KUBE-SVC-45TXGSBX3LGQQRTB"
    )
    assert _save("S", f"-m comment --comment {spn} -s 172.30.76.3 -j KUBE-MARK-MASQ") == (
        f'-A S -s 172.30.76.3/32 -m comment --comment "{spn}" -j KUBE-MARK-MASQ'
    )
    assert _save("S", "-m tcp -p tcp -j DNAT --to-destination 172.30.76.3:50051") == (
        "-A S -p tcp -m tcp -j DNAT --to-destination 172.30.76.3:50051"
    )


def test_probability_as_the_kernel_stores_it() -> None:
    def p(v: str) -> str:
        return _save("S", f"-m statistic --mode random --probability {v} -j X").split("--probability ")[1].split()[0]

    assert p("0.3333333333") == "0.33333333349"
    assert p("0.5000000000") == "0.50000000000"
    assert p("0.33333") == "0.33332999982"  # the article's (older kube-proxy) value
    assert p("0.0000099999") == "0.00001000008"  # checked with iptables 1.8.9
    assert p("0.1428571429") == "0.14285714272"


def test_targets_and_matches_print_like_iptables() -> None:
    assert _save("M", "-j MARK --or-mark 0x00004000") == "-A M -j MARK --set-xmark 0x4000/0x4000"
    assert _save("M", "-j MARK --xor-mark 0x00004000") == "-A M -j MARK --set-xmark 0x4000/0x0"
    assert (
        _save("M", "-m mark ! --mark 0x00004000/0x00004000 -j RETURN")
        == "-A M -m mark ! --mark 0x4000/0x4000 -j RETURN"
    )
    assert (
        _save("F", "-m tcp -p tcp --dport 53 -j REJECT")
        == "-A F -p tcp -m tcp --dport 53 -j REJECT --reject-with icmp-port-unreachable"
    )
    assert _save("R", "-m recent --name K --rcheck --seconds 10800 --reap -j K") == (
        "-A R -m recent --rcheck --seconds 10800 --reap --name K --mask 255.255.255.255 --rsource -j K"
    )
    assert _save("C", "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT") == (
        "-A C -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )


def test_save_string_quoting() -> None:
    assert save_string("abc_d-1") == "abc_d-1"
    assert save_string("a/b:c") == '"a/b:c"'
    assert save_string('q"\\') == '"q\\"\\\\"'


def test_render_save_layout() -> None:
    text = "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n"
    out = render_save(text, base_chain_jumps()).splitlines()
    assert [ln for ln in out if ln.startswith("*")] == ["*mangle", "*filter", "*nat"]
    f = out[out.index("*filter") : out.index("*nat")]
    assert f[1:4] == [":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    user = [ln for ln in f if ln.startswith(":KUBE")]
    assert user == sorted(user)
    # jumps are prepended in order, so the last one inserted comes first
    inputs = [ln for ln in f if ln.startswith("-A INPUT")]
    assert inputs[0] == "-A INPUT -j KUBE-FIREWALL"
    assert inputs[-1].endswith("-j KUBE-EXTERNAL-SERVICES")
