"""Core (``v1``) kinds: Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event."""

from __future__ import annotations

from typing import Any

import msgspec

from .meta import Base, Condition, LabelSelector, Object, ObjectMeta

IntOrString = int | str


# --- Namespace / Node -------------------------------------------------------------------------


class NamespaceSpec(Base):
    finalizers: list[str] | None = None


class NamespaceStatus(Base):
    phase: str | None = None


class Namespace(Object):
    KIND = "Namespace"
    NAMESPACED = False
    PLURAL = "namespaces"
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None


class Taint(Base):
    key: str
    effect: str
    value: str | None = None
    timeAdded: str | None = None


class NodeSpec(Base):
    podCIDR: str | None = None
    podCIDRs: list[str] | None = None
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    providerID: str | None = None


class NodeAddress(Base):
    type: str
    address: str


class NodeStatus(Base):
    addresses: list[NodeAddress] | None = None
    conditions: list[Condition] | None = None
    capacity: dict[str, str] | None = None
    allocatable: dict[str, str] | None = None
    nodeInfo: dict[str, Any] | None = None


class Node(Object):
    KIND = "Node"
    NAMESPACED = False
    PLURAL = "nodes"
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus | None = None

    @property
    def internal_ip(self) -> str | None:
        for a in (self.status.addresses if self.status else None) or []:
            if a.type == "InternalIP":
                return a.address
        return None


# --- Pod --------------------------------------------------------------------------------------


class ContainerPort(Base):
    containerPort: int
    name: str | None = None
    protocol: str = "TCP"
    hostPort: int | None = None
    hostIP: str | None = None


class KeySelector(Base):
    key: str
    name: str | None = None
    optional: bool | None = None


class FieldSelector(Base):
    fieldPath: str
    apiVersion: str | None = None


class EnvVarSource(Base):
    configMapKeyRef: KeySelector | None = None
    secretKeyRef: KeySelector | None = None
    fieldRef: FieldSelector | None = None
    resourceFieldRef: dict[str, Any] | None = None


class EnvVar(Base):
    name: str
    value: str | None = None
    valueFrom: EnvVarSource | None = None


class EnvFromRef(Base):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(Base):
    prefix: str | None = None
    configMapRef: EnvFromRef | None = None
    secretRef: EnvFromRef | None = None


class HTTPHeader(Base):
    name: str
    value: str


class HTTPGetAction(Base):
    port: IntOrString
    path: str | None = None
    host: str | None = None
    scheme: str | None = None
    httpHeaders: list[HTTPHeader] | None = None


class TCPSocketAction(Base):
    port: IntOrString
    host: str | None = None


class ExecAction(Base):
    command: list[str] | None = None


class Probe(Base):
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    exec: ExecAction | None = None
    grpc: dict[str, Any] | None = None
    initialDelaySeconds: int | None = None
    periodSeconds: int | None = None
    timeoutSeconds: int | None = None
    successThreshold: int | None = None
    failureThreshold: int | None = None
    terminationGracePeriodSeconds: int | None = None


class Container(Base):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    workingDir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    envFrom: list[EnvFromSource] | None = None
    resources: dict[str, Any] | None = None
    readinessProbe: Probe | None = None
    livenessProbe: Probe | None = None
    startupProbe: Probe | None = None
    imagePullPolicy: str | None = None
    volumeMounts: list[dict[str, Any]] | None = None
    securityContext: dict[str, Any] | None = None
    lifecycle: dict[str, Any] | None = None
    terminationMessagePath: str | None = None
    terminationMessagePolicy: str | None = None
    stdin: bool | None = None
    stdinOnce: bool | None = None
    tty: bool | None = None
    # kept so real manifests pass strict field validation; kins does not act on them
    volumeDevices: list[dict[str, Any]] | None = None
    resizePolicy: list[dict[str, Any]] | None = None
    restartPolicy: str | None = None


class PodDNSConfigOption(Base):
    name: str
    value: str | None = None


class PodDNSConfig(Base):
    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


class HostAlias(Base):
    ip: str
    hostnames: list[str] | None = None


class PodSpec(Base):
    containers: list[Container] = msgspec.field(default_factory=list)
    initContainers: list[Container] | None = None
    nodeName: str | None = None
    nodeSelector: dict[str, str] | None = None
    hostname: str | None = None
    subdomain: str | None = None
    setHostnameAsFQDN: bool | None = None
    hostAliases: list[HostAlias] | None = None
    dnsPolicy: str | None = None
    dnsConfig: PodDNSConfig | None = None
    restartPolicy: str | None = None
    hostNetwork: bool | None = None
    terminationGracePeriodSeconds: int | None = None
    serviceAccountName: str | None = None
    serviceAccount: str | None = None
    schedulerName: str | None = None
    securityContext: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] | None = None
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    priority: int | None = None
    priorityClassName: str | None = None
    enableServiceLinks: bool | None = None
    readinessGates: list[dict[str, Any]] | None = None
    preemptionPolicy: str | None = None
    automountServiceAccountToken: bool | None = None
    # kept so real manifests pass strict field validation; kins does not act on them
    imagePullSecrets: list[dict[str, Any]] | None = None
    topologySpreadConstraints: list[dict[str, Any]] | None = None
    activeDeadlineSeconds: int | None = None
    ephemeralContainers: list[dict[str, Any]] | None = None
    hostIPC: bool | None = None
    hostPID: bool | None = None
    hostUsers: bool | None = None
    shareProcessNamespace: bool | None = None
    os: dict[str, Any] | None = None
    overhead: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    resourceClaims: list[dict[str, Any]] | None = None
    runtimeClassName: str | None = None
    schedulingGates: list[dict[str, Any]] | None = None


class ContainerStatus(Base):
    name: str
    ready: bool = False
    restartCount: int = 0
    image: str | None = None
    imageID: str | None = None
    containerID: str | None = None
    started: bool | None = None
    state: dict[str, Any] | None = None
    lastState: dict[str, Any] | None = None


class PodIP(Base):
    ip: str


class PodStatus(Base):
    phase: str | None = None
    conditions: list[Condition] | None = None
    hostIP: str | None = None
    hostIPs: list[PodIP] | None = None
    podIP: str | None = None
    podIPs: list[PodIP] | None = None
    startTime: str | None = None
    containerStatuses: list[ContainerStatus] | None = None
    initContainerStatuses: list[ContainerStatus] | None = None
    reason: str | None = None
    message: str | None = None
    nominatedNodeName: str | None = None
    qosClass: str | None = None


class PodTemplateSpec(Base):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)


class Pod(Object):
    KIND = "Pod"
    PLURAL = "pods"
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus | None = None

    @property
    def ready(self) -> bool:
        for c in (self.status.conditions if self.status else None) or []:
            if c.type == "Ready":
                return c.status == "True"
        return False

    @property
    def terminating(self) -> bool:
        return self.metadata.deletionTimestamp is not None


# --- Service ----------------------------------------------------------------------------------


class ServicePort(Base):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    targetPort: IntOrString | None = None
    nodePort: int | None = None
    appProtocol: str | None = None


class ClientIPConfig(Base):
    timeoutSeconds: int | None = None


class SessionAffinityConfig(Base):
    clientIP: ClientIPConfig | None = None


class ServiceSpec(Base):
    type: str = "ClusterIP"
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    clusterIP: str | None = None
    clusterIPs: list[str] | None = None
    externalIPs: list[str] | None = None
    externalName: str | None = None
    externalTrafficPolicy: str | None = None
    internalTrafficPolicy: str | None = None
    healthCheckNodePort: int | None = None
    sessionAffinity: str | None = None
    sessionAffinityConfig: SessionAffinityConfig | None = None
    loadBalancerIP: str | None = None
    loadBalancerSourceRanges: list[str] | None = None
    loadBalancerClass: str | None = None
    allocateLoadBalancerNodePorts: bool | None = None
    publishNotReadyAddresses: bool | None = None
    ipFamilies: list[str] | None = None
    ipFamilyPolicy: str | None = None
    trafficDistribution: str | None = None


class PortStatus(Base):
    port: int
    protocol: str
    error: str | None = None


class LoadBalancerIngress(Base):
    ip: str | None = None
    hostname: str | None = None
    ipMode: str | None = None
    ports: list[PortStatus] | None = None


class LoadBalancerStatus(Base):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(Base):
    loadBalancer: LoadBalancerStatus | None = None
    conditions: list[Condition] | None = None


class Service(Object):
    KIND = "Service"
    PLURAL = "services"
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None

    @property
    def headless(self) -> bool:
        return self.spec.clusterIP == "None"

    @property
    def lb_ips(self) -> list[str]:
        ing = self.status.loadBalancer.ingress if self.status and self.status.loadBalancer else None
        return [i.ip for i in ing or [] if i.ip]


# --- Endpoints --------------------------------------------------------------------------------


class ObjectReference(Base):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    apiVersion: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class EndpointAddress(Base):
    ip: str
    hostname: str | None = None
    nodeName: str | None = None
    targetRef: ObjectReference | None = None


class EndpointPort(Base):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    appProtocol: str | None = None


class EndpointSubset(Base):
    addresses: list[EndpointAddress] | None = None
    notReadyAddresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(Object):
    KIND = "Endpoints"
    PLURAL = "endpoints"
    subsets: list[EndpointSubset] | None = None


# --- ConfigMap / Secret -----------------------------------------------------------------------


class ConfigMap(Object):
    KIND = "ConfigMap"
    PLURAL = "configmaps"
    data: dict[str, str] | None = None
    binaryData: dict[str, str] | None = None
    immutable: bool | None = None


class Secret(Object):
    KIND = "Secret"
    PLURAL = "secrets"
    type: str | None = None
    data: dict[str, str] | None = None
    stringData: dict[str, str] | None = None
    immutable: bool | None = None


# --- Event ------------------------------------------------------------------------------------


class EventSource(Base):
    component: str | None = None
    host: str | None = None


class Event(Object):
    """core/v1 Event, as the components' event recorders write it (aggregated: ``count`` and
    ``lastTimestamp`` grow when the same event repeats)."""

    KIND = "Event"
    PLURAL = "events"
    involvedObject: ObjectReference = msgspec.field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    count: int | None = None
    type: str | None = None
    eventTime: str | None = None
    series: dict[str, Any] | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None


__all__ = [
    "ConfigMap",
    "Container",
    "ContainerPort",
    "EndpointAddress",
    "EndpointPort",
    "EndpointSubset",
    "Endpoints",
    "Event",
    "EventSource",
    "IntOrString",
    "LabelSelector",
    "Namespace",
    "Node",
    "Pod",
    "PodSpec",
    "PodTemplateSpec",
    "Secret",
    "Service",
    "ServicePort",
    "ServiceSpec",
]
