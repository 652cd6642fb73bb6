"""The ClusterRoles and ClusterRoleBindings every cluster starts with, as the API server's RBAC
bootstrap policy defines them (user-facing roles, discovery, self reviews, public info).

``admin``, ``edit`` and ``view`` are aggregated: their rules are the union of the ClusterRoles
labelled ``rbac.authorization.k8s.io/aggregate-to-<role>`` (the aggregation controller fills
them in), and ``system:aggregate-to-*`` hold the built-in resources' share.
"""

from __future__ import annotations

from .meta import LabelSelector, ObjectMeta
from .rbac import RBAC_GROUP, AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = "kubernetes.io/bootstrapping"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _rule(verbs: list[str], groups: list[str], resources: str) -> PolicyRule:
    return PolicyRule(verbs=verbs, apiGroups=groups, resources=resources.split())


def _urls(verbs: list[str], urls: str) -> PolicyRule:
    return PolicyRule(verbs=verbs, nonResourceURLs=urls.split())


def _meta(name: str, labels: dict[str, str] | None = None) -> ObjectMeta:
    return ObjectMeta(
        name=name,
        labels={BOOTSTRAPPING: "rbac-defaults", **(labels or {})},
        annotations={AUTOUPDATE: "true"},
    )


def _role(name: str, rules: list[PolicyRule], labels: dict[str, str] | None = None) -> ClusterRole:
    return ClusterRole(metadata=_meta(name, labels), rules=rules)


def _aggregated(name: str, labels: dict[str, str] | None = None) -> ClusterRole:
    sel = LabelSelector(matchLabels={f"{AGGREGATE_TO}{name}": "true"})
    return ClusterRole(metadata=_meta(name, labels), aggregationRule=AggregationRule(clusterRoleSelectors=[sel]))


def _binding(role: str, *groups: str) -> ClusterRoleBinding:
    return ClusterRoleBinding(
        metadata=_meta(role),
        roleRef=RoleRef(apiGroup=RBAC_GROUP, kind="ClusterRole", name=role),
        subjects=[Subject(kind="Group", apiGroup=RBAC_GROUP, name=g) for g in groups],
    )


def cluster_roles() -> list[ClusterRole]:
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], "*"), _urls(["*"], "*")]),
        _aggregated("admin"),
        _aggregated("edit", {f"{AGGREGATE_TO}admin": "true"}),
        _aggregated("view", {f"{AGGREGATE_TO}edit": "true"}),
        _role(
            "system:aggregate-to-admin",
            [
                _rule(["create"], ["authorization.k8s.io"], "localsubjectaccessreviews"),
                _rule(ALL, [RBAC_GROUP], "rolebindings roles"),
            ],
            {f"{AGGREGATE_TO}admin": "true"},
        ),
        _role(
            "system:aggregate-to-edit",
            [
                _rule(READ, [""], "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy"),
                _rule(["impersonate"], [""], "serviceaccounts"),
                _rule(WRITE, [""], "pods pods/attach pods/exec pods/portforward pods/proxy"),
                _rule(["create"], [""], "pods/eviction"),
                _rule(
                    WRITE,
                    [""],
                    "configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale "
                    "secrets serviceaccounts services services/proxy",
                ),
                _rule(["create"], [""], "serviceaccounts/token"),
                _rule(
                    WRITE,
                    ["apps"],
                    "daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale "
                    "statefulsets statefulsets/scale",
                ),
                _rule(WRITE, ["autoscaling"], "horizontalpodautoscalers"),
                _rule(WRITE, ["batch"], "cronjobs jobs"),
                _rule(
                    WRITE,
                    ["extensions"],
                    "daemonsets deployments deployments/rollback deployments/scale ingresses networkpolicies "
                    "replicasets replicasets/scale replicationcontrollers/scale",
                ),
                _rule(WRITE, ["policy"], "poddisruptionbudgets"),
                _rule(WRITE, ["networking.k8s.io"], "ingresses networkpolicies"),
                _rule(ALL, ["coordination.k8s.io"], "leases"),
            ],
            {f"{AGGREGATE_TO}edit": "true"},
        ),
        _role(
            "system:aggregate-to-view",
            [
                _rule(
                    READ,
                    [""],
                    "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods "
                    "replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status",
                ),
                _rule(
                    READ,
                    [""],
                    "bindings events limitranges namespaces/status pods/log pods/status "
                    "replicationcontrollers/status resourcequotas resourcequotas/status",
                ),
                _rule(READ, [""], "namespaces"),
                _rule(READ, ["discovery.k8s.io"], "endpointslices"),
                _rule(
                    READ,
                    ["apps"],
                    "controllerrevisions daemonsets daemonsets/status deployments deployments/scale "
                    "deployments/status replicasets replicasets/scale replicasets/status statefulsets "
                    "statefulsets/scale statefulsets/status",
                ),
                _rule(READ, ["autoscaling"], "horizontalpodautoscalers horizontalpodautoscalers/status"),
                _rule(READ, ["batch"], "cronjobs cronjobs/status jobs jobs/status"),
                _rule(
                    READ,
                    ["extensions"],
                    "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses "
                    "ingresses/status networkpolicies replicasets replicasets/scale replicasets/status "
                    "replicationcontrollers/scale",
                ),
                _rule(READ, ["policy"], "poddisruptionbudgets poddisruptionbudgets/status"),
                _rule(READ, ["networking.k8s.io"], "ingresses ingresses/status networkpolicies"),
            ],
            {f"{AGGREGATE_TO}view": "true"},
        ),
        _role(
            "system:discovery",
            [
                _urls(
                    ["get"], "/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/"
                )
            ],
        ),
        _role(
            "system:basic-user",
            [
                _rule(["create"], ["authorization.k8s.io"], "selfsubjectaccessreviews selfsubjectrulesreviews"),
                _rule(["create"], ["authentication.k8s.io"], "selfsubjectreviews"),
            ],
        ),
        _role("system:public-info-viewer", [_urls(["get"], "/healthz /livez /readyz /version /version/")]),
        _role(
            "system:auth-delegator",
            [
                _rule(["create"], ["authentication.k8s.io"], "tokenreviews"),
                _rule(["create"], ["authorization.k8s.io"], "subjectaccessreviews"),
            ],
        ),
        _role("system:kube-dns", [_rule(["list", "watch"], [""], "endpoints services")]),
        # metrics-server's (kins serves metrics.k8s.io itself): readable wherever view is.
        _role(
            "system:aggregated-metrics-reader",
            [_rule(READ, ["metrics.k8s.io"], "pods nodes")],
            {f"{AGGREGATE_TO}view": "true", f"{AGGREGATE_TO}edit": "true", f"{AGGREGATE_TO}admin": "true"},
        ),
        _role(
            "system:service-account-issuer-discovery",
            [
                _urls(
                    ["get"],
                    "/.well-known/openid-configuration /.well-known/openid-configuration/ "
                    "/openid/v1/jwks /openid/v1/jwks/",
                )
            ],
        ),
    ]


def cluster_role_bindings() -> list[ClusterRoleBinding]:
    return [
        _binding("cluster-admin", "system:masters"),
        _binding("system:basic-user", "system:authenticated"),
        _binding("system:discovery", "system:authenticated"),
        _binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
        _binding("system:service-account-issuer-discovery", "system:serviceaccounts"),
    ]
