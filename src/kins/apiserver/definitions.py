"""CustomResourceDefinitions at work: storing a definition serves its kind at once (routes,
discovery, OpenAPI, ``kubectl get <plural|short name>``), deleting it deletes its objects and
stops serving the kind, and the definitions already stored are served when the API starts."""

from __future__ import annotations

import contextlib
import logging

from .._errors import NotFound, ValidationError
from ..api.apiextensions import CustomResourceDefinition
from ..api.custom import DefinitionConflict, check_conflict, owner_of, register_definition, unregister_definition
from ..api.meta import Object
from ..api.validation.common import format_value
from ..store.base import Store

log = logging.getLogger(__name__)
KIND = CustomResourceDefinition.KIND


def conflicts(obj: Object) -> list[ValidationError]:
    """A definition whose kind kins serves otherwise is refused (kins keys objects by kind)."""
    if not isinstance(obj, CustomResourceDefinition):
        return []
    reason = check_conflict(obj)
    if reason is None:
        return []
    return [ValidationError("", "spec.names.kind", f"Invalid value: {format_value(obj.spec.names.kind)}: {reason}")]


def stored(obj: Object) -> None:
    """After a definition was created or updated: serve its kind as it now reads."""
    if isinstance(obj, CustomResourceDefinition):
        register_definition(obj)


def deleted(store: Store, obj: Object) -> None:
    """After a definition was deleted: its objects go, then its kind."""
    if not isinstance(obj, CustomResourceDefinition):
        return
    kind = obj.spec.names.kind
    if owner_of(kind) == obj.name:
        items, _ = store.list(kind)
        with store.transaction():
            for o in items:
                with contextlib.suppress(NotFound):
                    store.delete(kind, o.metadata.namespace, o.name)
        unregister_definition(obj)


def serve_stored(store: Store) -> None:
    """Serve the kinds of the definitions in ``store`` (the API starting on a kept store)."""
    for crd in store.list(KIND)[0]:
        assert isinstance(crd, CustomResourceDefinition)
        try:
            register_definition(crd)
        except DefinitionConflict as e:
            log.warning("CustomResourceDefinition %s is not served: %s", crd.name, e)
