"""``batch/v1``: Job and CronJob."""

from __future__ import annotations

import msgspec

from .core import ObjectReference, PodTemplateSpec
from .meta import Base, Condition, LabelSelector, Object, ObjectMeta


class PodFailurePolicyOnExitCodesRequirement(Base):
    containerName: str | None = None
    operator: str | None = None
    values: list[int] | None = None


class PodFailurePolicyOnPodConditionsPattern(Base):
    type: str | None = None
    status: str | None = None


class PodFailurePolicyRule(Base):
    action: str | None = None
    onExitCodes: PodFailurePolicyOnExitCodesRequirement | None = None
    onPodConditions: list[PodFailurePolicyOnPodConditionsPattern] | None = None


class PodFailurePolicy(Base):
    rules: list[PodFailurePolicyRule] | None = None


class SuccessPolicyRule(Base):
    succeededIndexes: str | None = None
    succeededCount: int | None = None


class SuccessPolicy(Base):
    rules: list[SuccessPolicyRule] | None = None


class JobSpec(Base):
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    parallelism: int | None = None
    completions: int | None = None
    activeDeadlineSeconds: int | None = None
    backoffLimit: int | None = None
    backoffLimitPerIndex: int | None = None
    maxFailedIndexes: int | None = None
    podFailurePolicy: PodFailurePolicy | None = None
    successPolicy: SuccessPolicy | None = None
    selector: LabelSelector | None = None
    manualSelector: bool | None = None
    ttlSecondsAfterFinished: int | None = None
    completionMode: str | None = None
    suspend: bool | None = None
    podReplacementPolicy: str | None = None
    managedBy: str | None = None


class UncountedTerminatedPods(Base):
    succeeded: list[str] | None = None
    failed: list[str] | None = None


class JobStatus(Base):
    conditions: list[Condition] | None = None
    startTime: str | None = None
    completionTime: str | None = None
    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    terminating: int | None = None
    ready: int | None = None
    completedIndexes: str | None = None
    failedIndexes: str | None = None
    uncountedTerminatedPods: UncountedTerminatedPods | None = None


class Job(Object):
    KIND = "Job"
    API_VERSION = "batch/v1"
    PLURAL = "jobs"
    spec: JobSpec = msgspec.field(default_factory=JobSpec)
    status: JobStatus | None = None


class JobTemplateSpec(Base):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: JobSpec = msgspec.field(default_factory=JobSpec)


class CronJobSpec(Base):
    schedule: str = ""
    jobTemplate: JobTemplateSpec = msgspec.field(default_factory=JobTemplateSpec)
    timeZone: str | None = None
    startingDeadlineSeconds: int | None = None
    concurrencyPolicy: str | None = None
    suspend: bool | None = None
    successfulJobsHistoryLimit: int | None = None
    failedJobsHistoryLimit: int | None = None


class CronJobStatus(Base):
    active: list[ObjectReference] | None = None
    lastScheduleTime: str | None = None
    lastSuccessfulTime: str | None = None


class CronJob(Object):
    KIND = "CronJob"
    API_VERSION = "batch/v1"
    PLURAL = "cronjobs"
    spec: CronJobSpec = msgspec.field(default_factory=CronJobSpec)
    status: CronJobStatus | None = None
