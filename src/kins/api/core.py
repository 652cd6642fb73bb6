"""Core (``v1``) kinds: Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event."""

from __future__ import annotations

from typing import Any

import msgspec

from .meta import Base, Condition, LabelSelector, Object, ObjectMeta

IntOrString = int | str
# A resource.Quantity: "100m", "1Gi", or a plain number (``cpu: 0.5``, ``memory: 1073741824``).
Quantity = str | int | float


# --- Namespace / Node -------------------------------------------------------------------------


class NamespaceSpec(Base):
    finalizers: list[str] | None = None


class NamespaceStatus(Base):
    phase: str | None = None
    # What the namespace controller reports while it empties a Terminating namespace.
    conditions: list[Condition] | None = None


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


class NodeSwapStatus(Base):
    capacity: int | None = None


class NodeSystemInfo(Base):
    # Always written by the API server, but absent and empty stay apart for describe pages.
    machineID: str | None = None
    systemUUID: str | None = None
    bootID: str | None = None
    kernelVersion: str | None = None
    osImage: str | None = None
    containerRuntimeVersion: str | None = None
    kubeletVersion: str | None = None
    kubeProxyVersion: str | None = None
    operatingSystem: str | None = None
    architecture: str | None = None
    swap: NodeSwapStatus | None = None


class NodeStatus(Base):
    addresses: list[NodeAddress] | None = None
    conditions: list[Condition] | None = None
    capacity: dict[str, str] | None = None
    allocatable: dict[str, str] | None = None
    nodeInfo: NodeSystemInfo | None = None


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


class ResourceFieldSelector(Base):
    containerName: str | None = None
    resource: str = ""
    divisor: Quantity | None = None


class EnvVarSource(Base):
    configMapKeyRef: KeySelector | None = None
    secretKeyRef: KeySelector | None = None
    fieldRef: FieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None


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


class GRPCAction(Base):
    port: int | None = None
    service: str | None = None
    mode: str | None = None


class Probe(Base):
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    exec: ExecAction | None = None
    grpc: GRPCAction | None = None
    initialDelaySeconds: int | None = None
    periodSeconds: int | None = None
    timeoutSeconds: int | None = None
    successThreshold: int | None = None
    failureThreshold: int | None = None
    terminationGracePeriodSeconds: int | None = None


class ResourceClaim(Base):
    name: str = ""
    request: str | None = None


class ResourceRequirements(Base):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[ResourceClaim] | None = None


class VolumeMount(Base):
    name: str = ""
    readOnly: bool | None = None
    recursiveReadOnly: str | None = None
    mountPath: str = ""
    subPath: str | None = None
    mountPropagation: str | None = None
    subPathExpr: str | None = None
    bindMountOptions: list[str] | None = None


class Capabilities(Base):
    add: list[str] | None = None
    drop: list[str] | None = None


class SELinuxOptions(Base):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class WindowsSecurityContextOptions(Base):
    gmsaCredentialSpecName: str | None = None
    gmsaCredentialSpec: str | None = None
    runAsUserName: str | None = None
    hostProcess: bool | None = None


class SeccompProfile(Base):
    type: str | None = None
    localhostProfile: str | None = None


class AppArmorProfile(Base):
    type: str | None = None
    localhostProfile: str | None = None


class SecurityContext(Base):
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    seLinuxOptions: SELinuxOptions | None = None
    windowsOptions: WindowsSecurityContextOptions | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    readOnlyRootFilesystem: bool | None = None
    allowPrivilegeEscalation: bool | None = None
    procMount: str | None = None
    seccompProfile: SeccompProfile | None = None
    appArmorProfile: AppArmorProfile | None = None


class SleepAction(Base):
    seconds: int | None = None


class LifecycleHandler(Base):
    exec: ExecAction | None = None
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    sleep: SleepAction | None = None


class Lifecycle(Base):
    postStart: LifecycleHandler | None = None
    preStop: LifecycleHandler | None = None
    stopSignal: str | None = None


class VolumeDevice(Base):
    name: str = ""
    devicePath: str = ""


class ContainerResizePolicy(Base):
    resourceName: str | None = None
    restartPolicy: str | None = None


class Container(Base):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    workingDir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    envFrom: list[EnvFromSource] | None = None
    resources: ResourceRequirements | None = None
    readinessProbe: Probe | None = None
    livenessProbe: Probe | None = None
    startupProbe: Probe | None = None
    imagePullPolicy: str | None = None
    volumeMounts: list[VolumeMount] | None = None
    securityContext: SecurityContext | None = None
    lifecycle: Lifecycle | None = None
    terminationMessagePath: str | None = None
    terminationMessagePolicy: str | None = None
    stdin: bool | None = None
    stdinOnce: bool | None = None
    tty: bool | None = None
    # kept so real manifests pass strict field validation; kins does not act on them
    volumeDevices: list[VolumeDevice] | None = None
    resizePolicy: list[ContainerResizePolicy] | None = None
    restartPolicy: str | None = None


class EphemeralContainer(Container):
    """A debugging container added to a running pod (the Container fields, and its target)."""

    targetContainerName: str | None = None


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


class HostPathVolumeSource(Base):
    path: str = ""
    type: str | None = None


class EmptyDirVolumeSource(Base):
    medium: str | None = None
    sizeLimit: Quantity | None = None
    mode: int | None = None


class KeyToPath(Base):
    key: str = ""
    path: str = ""
    mode: int | None = None
    user: int | None = None


class SecretVolumeSource(Base):
    secretName: str | None = None
    items: list[KeyToPath] | None = None
    defaultMode: int | None = None
    optional: bool | None = None
    defaultUser: int | None = None


class NFSVolumeSource(Base):
    server: str = ""
    path: str = ""
    readOnly: bool | None = None


class PersistentVolumeClaimVolumeSource(Base):
    claimName: str = ""
    readOnly: bool | None = None


class DownwardAPIVolumeFile(Base):
    path: str = ""
    fieldRef: FieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None
    mode: int | None = None
    user: int | None = None


class DownwardAPIVolumeSource(Base):
    items: list[DownwardAPIVolumeFile] | None = None
    defaultMode: int | None = None
    defaultUser: int | None = None


class ConfigMapVolumeSource(Base):
    name: str | None = None
    items: list[KeyToPath] | None = None
    defaultMode: int | None = None
    optional: bool | None = None
    defaultUser: int | None = None


class SecretProjection(Base):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(Base):
    items: list[DownwardAPIVolumeFile] | None = None


class ConfigMapProjection(Base):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class ServiceAccountTokenProjection(Base):
    audience: str | None = None
    expirationSeconds: int | None = None
    path: str = ""
    user: int | None = None


class ClusterTrustBundleProjection(Base):
    name: str | None = None
    signerName: str | None = None
    labelSelector: LabelSelector | None = None
    optional: bool | None = None
    path: str = ""
    user: int | None = None


class PodCertificateProjection(Base):
    signerName: str | None = None
    keyType: str | None = None
    maxExpirationSeconds: int | None = None
    credentialBundlePath: str | None = None
    keyPath: str | None = None
    certificateChainPath: str | None = None
    userAnnotations: dict[str, str] | None = None
    user: int | None = None


class VolumeProjection(Base):
    secret: SecretProjection | None = None
    downwardAPI: DownwardAPIProjection | None = None
    configMap: ConfigMapProjection | None = None
    serviceAccountToken: ServiceAccountTokenProjection | None = None
    clusterTrustBundle: ClusterTrustBundleProjection | None = None
    podCertificate: PodCertificateProjection | None = None


class ProjectedVolumeSource(Base):
    sources: list[VolumeProjection] | None = None
    defaultMode: int | None = None
    defaultUser: int | None = None


class LocalObjectReference(Base):
    name: str | None = None


class CSIVolumeSource(Base):
    driver: str = ""
    readOnly: bool | None = None
    fsType: str | None = None
    volumeAttributes: dict[str, str] | None = None
    nodePublishSecretRef: LocalObjectReference | None = None


class ImageVolumeSource(Base):
    reference: str | None = None
    pullPolicy: str | None = None


class Volume(Base):
    """One of the VolumeSource members besides the name. The in-tree cloud and network disk
    sources and ``ephemeral`` (a whole PersistentVolumeClaim template) stay plain mappings: kins
    mounts none of them and only keeps them so such manifests load and round-trip."""

    name: str = ""
    hostPath: HostPathVolumeSource | None = None
    emptyDir: EmptyDirVolumeSource | None = None
    gcePersistentDisk: dict[str, Any] | None = None
    awsElasticBlockStore: dict[str, Any] | None = None
    gitRepo: dict[str, Any] | None = None
    secret: SecretVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    iscsi: dict[str, Any] | None = None
    glusterfs: dict[str, Any] | None = None
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource | None = None
    rbd: dict[str, Any] | None = None
    flexVolume: dict[str, Any] | None = None
    cinder: dict[str, Any] | None = None
    cephfs: dict[str, Any] | None = None
    flocker: dict[str, Any] | None = None
    downwardAPI: DownwardAPIVolumeSource | None = None
    fc: dict[str, Any] | None = None
    azureFile: dict[str, Any] | None = None
    configMap: ConfigMapVolumeSource | None = None
    vsphereVolume: dict[str, Any] | None = None
    quobyte: dict[str, Any] | None = None
    azureDisk: dict[str, Any] | None = None
    photonPersistentDisk: dict[str, Any] | None = None
    projected: ProjectedVolumeSource | None = None
    portworxVolume: dict[str, Any] | None = None
    scaleIO: dict[str, Any] | None = None
    storageos: dict[str, Any] | None = None
    csi: CSIVolumeSource | None = None
    ephemeral: dict[str, Any] | None = None
    image: ImageVolumeSource | None = None


class Sysctl(Base):
    name: str = ""
    value: str = ""


class PodSecurityContext(Base):
    seLinuxOptions: SELinuxOptions | None = None
    windowsOptions: WindowsSecurityContextOptions | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    supplementalGroups: list[int] | None = None
    supplementalGroupsPolicy: str | None = None
    fsGroup: int | None = None
    sysctls: list[Sysctl] | None = None
    fsGroupChangePolicy: str | None = None
    seccompProfile: SeccompProfile | None = None
    appArmorProfile: AppArmorProfile | None = None
    seLinuxChangePolicy: str | None = None


class Toleration(Base):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    tolerationSeconds: int | None = None


class NodeSelectorRequirement(Base):
    key: str = ""
    operator: str | None = None
    values: list[str] | None = None


class NodeSelectorTerm(Base):
    matchExpressions: list[NodeSelectorRequirement] | None = None
    matchFields: list[NodeSelectorRequirement] | None = None


class NodeSelector(Base):
    nodeSelectorTerms: list[NodeSelectorTerm] | None = None


class PreferredSchedulingTerm(Base):
    weight: int | None = None
    preference: NodeSelectorTerm | None = None


class NodeAffinity(Base):
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(Base):
    labelSelector: LabelSelector | None = None
    namespaces: list[str] | None = None
    topologyKey: str = ""
    namespaceSelector: LabelSelector | None = None
    matchLabelKeys: list[str] | None = None
    mismatchLabelKeys: list[str] | None = None


class WeightedPodAffinityTerm(Base):
    weight: int | None = None
    podAffinityTerm: PodAffinityTerm | None = None


class PodAffinity(Base):
    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] | None = None


class PodAntiAffinity(Base):
    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] | None = None


class Affinity(Base):
    nodeAffinity: NodeAffinity | None = None
    podAffinity: PodAffinity | None = None
    podAntiAffinity: PodAntiAffinity | None = None


class PodReadinessGate(Base):
    conditionType: str | None = None


class TopologySpreadConstraint(Base):
    maxSkew: int | None = None
    topologyKey: str = ""
    whenUnsatisfiable: str | None = None
    labelSelector: LabelSelector | None = None
    minDomains: int | None = None
    nodeAffinityPolicy: str | None = None
    nodeTaintsPolicy: str | None = None
    matchLabelKeys: list[str] | None = None


class PodOS(Base):
    name: str | None = None


class PodResourceClaim(Base):
    name: str = ""
    resourceClaimName: str | None = None
    resourceClaimTemplateName: str | None = None


class PodSchedulingGate(Base):
    name: str = ""


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
    securityContext: PodSecurityContext | None = None
    volumes: list[Volume] | None = None
    tolerations: list[Toleration] | None = None
    affinity: Affinity | None = None
    priority: int | None = None
    priorityClassName: str | None = None
    enableServiceLinks: bool | None = None
    readinessGates: list[PodReadinessGate] | None = None
    preemptionPolicy: str | None = None
    automountServiceAccountToken: bool | None = None
    # kept so real manifests pass strict field validation; kins does not act on them
    imagePullSecrets: list[LocalObjectReference] | None = None
    topologySpreadConstraints: list[TopologySpreadConstraint] | None = None
    activeDeadlineSeconds: int | None = None
    ephemeralContainers: list[EphemeralContainer] | None = None
    hostIPC: bool | None = None
    hostPID: bool | None = None
    hostUsers: bool | None = None
    shareProcessNamespace: bool | None = None
    os: PodOS | None = None
    overhead: dict[str, Quantity] | None = None
    resources: ResourceRequirements | None = None
    resourceClaims: list[PodResourceClaim] | None = None
    runtimeClassName: str | None = None
    schedulingGates: list[PodSchedulingGate] | None = None


class ContainerStateWaiting(Base):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(Base):
    startedAt: str | None = None


class ContainerStateTerminated(Base):
    exitCode: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    containerID: str | None = None


class ContainerState(Base):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(Base):
    name: str
    ready: bool = False
    restartCount: int = 0
    image: str | None = None
    imageID: str | None = None
    containerID: str | None = None
    started: bool | None = None
    state: ContainerState | None = None
    lastState: ContainerState | None = None


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
    ephemeralContainerStatuses: list[ContainerStatus] | None = None
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


class EventSeries(Base):
    count: int | None = None
    lastObservedTime: str | None = None


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
    series: EventSeries | None = None
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
