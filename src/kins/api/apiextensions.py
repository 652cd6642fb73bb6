"""``apiextensions.k8s.io/v1`` CustomResourceDefinition.

The schema stays plain JSON data (``openAPIV3Schema``): ``api/custom.py`` reads it to build
each version's type, prune unknown fields and validate custom objects.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .meta import Base, Condition, Object

SCOPES = ("Cluster", "Namespaced")


class CustomResourceDefinitionNames(Base):
    plural: str = ""
    singular: str | None = None
    shortNames: list[str] | None = None
    kind: str = ""
    listKind: str | None = None
    categories: list[str] | None = None


class CustomResourceValidation(Base):
    openAPIV3Schema: dict[str, Any] | None = None


class CustomResourceSubresourceScale(Base):
    specReplicasPath: str = ""
    statusReplicasPath: str = ""
    labelSelectorPath: str | None = None


class CustomResourceSubresources(Base):
    # ``status: {}`` turns the subresource on: an empty dict, not None.
    status: dict[str, Any] | None = None
    scale: CustomResourceSubresourceScale | None = None


class CustomResourceColumnDefinition(Base):
    name: str = ""
    type: str = ""
    jsonPath: str = ""
    format: str | None = None
    description: str | None = None
    priority: int | None = None


class CustomResourceDefinitionVersion(Base):
    name: str = ""
    served: bool = False
    storage: bool = False
    deprecated: bool | None = None
    deprecationWarning: str | None = None
    schema: CustomResourceValidation | None = None
    subresources: CustomResourceSubresources | None = None
    additionalPrinterColumns: list[CustomResourceColumnDefinition] | None = None
    selectableFields: list[dict[str, Any]] | None = None


class CustomResourceConversion(Base):
    strategy: str = "None"
    webhook: dict[str, Any] | None = None


class CustomResourceDefinitionSpec(Base):
    group: str = ""
    names: CustomResourceDefinitionNames = msgspec.field(default_factory=CustomResourceDefinitionNames)
    scope: str = ""
    versions: list[CustomResourceDefinitionVersion] = msgspec.field(default_factory=list)
    conversion: CustomResourceConversion | None = None
    preserveUnknownFields: bool | None = None


class CustomResourceDefinitionStatus(Base):
    conditions: list[Condition] | None = None
    acceptedNames: CustomResourceDefinitionNames | None = None
    storedVersions: list[str] | None = None


class CustomResourceDefinition(Object):
    KIND = "CustomResourceDefinition"
    API_VERSION = "apiextensions.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "customresourcedefinitions"
    spec: CustomResourceDefinitionSpec = msgspec.field(default_factory=CustomResourceDefinitionSpec)
    status: CustomResourceDefinitionStatus | None = None

    @property
    def storage_version(self) -> str:
        return next((v.name for v in self.spec.versions if v.storage), "")
