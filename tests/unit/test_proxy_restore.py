from pathlib import Path

import pytest

from kins.render.proxy.restore import (
    AddrTypeMatch,
    Comment,
    ConntrackMatch,
    Dnat,
    GenericMatch,
    GenericTarget,
    Jump,
    Mark,
    MarkMatch,
    Masquerade,
    PortMatch,
    RecentMatch,
    Reject,
    RestoreParseError,
    StatisticMatch,
    Verdict,
    parse_restore,
    parse_rule,
    split_args,
)
from kins.render.proxy.save import render_dump

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "iptables"


def test_split_args_quotes_and_escapes() -> None:
    assert split_args('-m comment --comment "a b" -j X') == ["-m", "comment", "--comment", "a b", "-j", "X"]
    assert split_args(r'--comment "say \"hi\"\\"  x') == ["--comment", 'say "hi"\\', "x"]
    with pytest.raises(ValueError):
        split_args('--comment "open')


def test_kube_proxy_rule_forms() -> None:
    r = parse_rule(
        "KUBE-SERVICES",
        split_args('-m comment --comment "ns/a:p cluster IP" -m tcp -p tcp -d 10.254.0.5 --dport 80 -j KUBE-SVC-X'),
    )
    assert (r.dst, r.proto, r.comment) == ("10.254.0.5/32", "tcp", "ns/a:p cluster IP")
    assert r.matches == (Comment("ns/a:p cluster IP"), PortMatch("tcp", dport=(80, 80)))
    assert r.target == Jump("KUBE-SVC-X")
    r = parse_rule("S", split_args("-m comment --comment x -m statistic --mode random --probability 0.3333333333 -j Y"))
    st = r.matches[1]
    assert isinstance(st, StatisticMatch) and st.probability == 715827883
    assert abs(st.chance - 1 / 3) < 1e-9
    r = parse_rule(
        "S", split_args("-m recent --name KUBE-SEP-A --set -m udp -p udp -j DNAT --to-destination 1.2.3.4:53")
    )
    assert r.matches == (RecentMatch(name="KUBE-SEP-A", command="set"), PortMatch("udp"))
    assert r.target == Dnat("1.2.3.4:53") and r.target.ip == "1.2.3.4" and r.target.port == 53
    r = parse_rule("S", split_args("-m recent --name A --rcheck --seconds 10800 --reap -j A"))
    assert r.matches == (RecentMatch(name="A", command="rcheck", seconds=10800, reap=True),)
    r = parse_rule("P", split_args("-m mark ! --mark 0x00004000/0x00004000 -j RETURN"))
    assert r.matches == (MarkMatch(0x4000, 0x4000, neg=True),) and r.target == Verdict("RETURN")
    assert r.matches[0].matches(0) and not r.matches[0].matches(0x4000)  # type: ignore[union-attr]
    r = parse_rule(
        "F", split_args("-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
    )
    assert (r.src, r.src_neg, r.dst, r.dst_neg) == ("127.0.0.0/8", True, "127.0.0.0/8", False)
    assert r.matches == (ConntrackMatch(("RELATED", "ESTABLISHED", "DNAT"), neg=True),)
    r = parse_rule("E", split_args("-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"))
    assert r.matches == (AddrTypeMatch(src_type="LOCAL"),)
    r = parse_rule("FW", split_args('-m comment --comment "other traffic"'))
    assert r.target is None


def test_targets_normalised() -> None:
    def t(args: str):  # type: ignore[no-untyped-def]
        return parse_rule("C", split_args(args)).target

    assert t("-j MARK --or-mark 0x4000") == Mark(0x4000, 0x4000)
    assert t("-j MARK --xor-mark 0x4000") == Mark(0x4000, 0)
    assert t("-j MARK --set-mark 0x8000") == Mark(0x8000, 0xFFFFFFFF)
    assert t("-j MARK --and-mark 0x8000") == Mark(0, 0xFFFF7FFF)
    assert Mark(0x4000, 0x4000).apply(0x1) == 0x4001 and Mark(0x4000, 0).apply(0x4001) == 0x1
    assert t("-j REJECT") == Reject("icmp-port-unreachable")
    assert t("-p tcp -j REJECT --reject-with tcp-rst") == Reject("tcp-reset")
    assert t("-j MASQUERADE --random-fully") == Masquerade(random_fully=True)
    assert t("-j LOG --log-prefix x") == GenericTarget("LOG", ("--log-prefix", "x"))
    assert t("-j NOTRACK") == GenericTarget("NOTRACK")
    assert t("-g KUBE-X") == Jump("KUBE-X", goto=True)


def test_implicit_protocol_match_and_generic_modules() -> None:
    r = parse_rule("C", split_args("-p tcp --dport 80:90 -m set --match-set foo dst -j ACCEPT"))
    assert r.matches == (PortMatch("tcp", dport=(80, 90)), GenericMatch("set", ("--match-set", "foo", "dst")))
    with pytest.raises(ValueError):
        parse_rule("C", split_args("--dport 80 -j ACCEPT"))


def test_parse_restore_structure() -> None:
    dump = parse_restore(
        "# c\n*nat\n:KUBE-SERVICES - [0:0]\n:PREROUTING ACCEPT [3:180]\n-A KUBE-SERVICES -j RETURN\n"
        "-A OUTPUT -j KUBE-SERVICES\n:KUBE-SEP-OLD - [0:0]\n-X KUBE-SEP-OLD\nCOMMIT\n"
    )
    nat = dump.tables["nat"]
    assert list(nat.chains) == ["KUBE-SERVICES", "PREROUTING", "OUTPUT"]
    assert nat.chains["PREROUTING"].counters == (3, 180) and nat.chains["PREROUTING"].policy == "ACCEPT"
    assert nat.chains["OUTPUT"].declared is False and nat.chains["OUTPUT"].policy == "ACCEPT"
    assert nat.deleted == ["KUBE-SEP-OLD"]
    assert dump.rules("nat", "KUBE-SERVICES")[0].target == Verdict("RETURN")
    assert dump.rules("filter", "INPUT") == []


def test_parse_errors_carry_line_numbers() -> None:
    with pytest.raises(RestoreParseError, match="line 3"):
        parse_restore("*filter\n:X - [0:0]\n-A X --bogus 1 -j ACCEPT\nCOMMIT\n")
    with pytest.raises(RestoreParseError, match="no COMMIT"):
        parse_restore("*filter\n:X - [0:0]\n")


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.save")), ids=lambda p: p.stem)
def test_save_output_round_trips(path: Path) -> None:
    # An iptables-save dump parses into the typed structure and prints back unchanged.
    text = path.read_text()
    assert render_dump(parse_restore(text)) == text
