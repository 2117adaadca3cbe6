"""gRPC server reflection in both protocol versions, v1 and v1alpha.

grpcio-reflection, pinned with the rest of the grpcio family, serves only
``grpc.reflection.v1alpha.ServerReflection``. ``grpc.reflection.v1`` is the
same protocol under another package name: its messages match v1alpha's field
for field, so their encodings are identical. v1 is therefore served by the
same servicer under the v1 method name, with v1alpha's message classes doing
the (identical) decoding and encoding, and v1's file descriptor -- v1alpha's
with the package renamed -- is added to the default descriptor pool so that
either version can describe both.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

__all__ = ["REFLECTION_SERVICES", "enable_reflection"]

_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package  # grpc.reflection.v1alpha
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_SERVICE = "ServerReflection"
_METHOD = "ServerReflectionInfo"

#: The reflection services a swarmd server offers, by full name.
REFLECTION_SERVICES = (f"{_V1_PACKAGE}.{_SERVICE}", reflection.SERVICE_NAME)


def _register_v1_descriptor() -> None:
    """Add grpc/reflection/v1/reflection.proto to the default pool, once."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE
    proto.options.Clear()
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    pool.Add(proto)


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on ``server`` for ``service_names``
    (the reflection services themselves are listed too)."""
    _register_v1_descriptor()
    names = [*service_names, *REFLECTION_SERVICES]
    servicer = reflection.aio.ReflectionServicer(names)
    # v1alpha under its own name, as grpcio-reflection registers it.
    reflection.enable_server_reflection(names, server)
    handler = grpc.method_handlers_generic_handler(
        f"{_V1_PACKAGE}.{_SERVICE}",
        {
            _METHOD: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
