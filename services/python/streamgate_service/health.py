"""The gRPC health service (grpc.health.v1.Health: Check and Watch),
served with grpc's generic handlers: grpcio-health-checking is not among
the packages this runtime builds on, and two messages are all it needs."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "grpc.health.v1.Health"

# grpc.health.v1's status values.
UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3


def _messages() -> tuple[Any, Any]:
    """Builds HealthCheckRequest and HealthCheckResponse from their
    descriptor, in a pool of their own (no clash with another copy)."""
    f = descriptor_pb2.FileDescriptorProto(name="streamgate_service/grpc_health_v1.proto", package="grpc.health.v1", syntax="proto3")
    req = f.message_type.add(name="HealthCheckRequest")
    req.field.add(name="service", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    res = f.message_type.add(name="HealthCheckResponse")
    enum = res.enum_type.add(name="ServingStatus")
    for name, n in (("UNKNOWN", UNKNOWN), ("SERVING", SERVING), ("NOT_SERVING", NOT_SERVING), ("SERVICE_UNKNOWN", SERVICE_UNKNOWN)):
        enum.value.add(name=name, number=n)
    res.field.add(name="status", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
                  type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(f.SerializeToString())
    fd = pool.FindFileByName(f.name)
    factory = message_factory.MessageFactory(pool)
    get = getattr(message_factory, "GetMessageClass", None)
    classes = []
    for name in ("HealthCheckRequest", "HealthCheckResponse"):
        d = fd.message_types_by_name[name]
        classes.append(get(d) if get else factory.GetPrototype(d))
    return classes[0], classes[1]


HealthCheckRequest, HealthCheckResponse = _messages()


class Health:
    """Serving statuses by service name ("" is the whole server), and the
    watchers waiting for them to change."""

    def __init__(self) -> None:
        self._status: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._shutdown = False

    def set(self, service: str, status: int) -> None:
        """Sets a service's status (ignored after shutdown, like grpc-go's)."""
        if self._shutdown:
            return
        self._status[service] = status
        self._changed.set()
        self._changed = asyncio.Event()

    def shutdown(self) -> None:
        """Sets every service NOT_SERVING for good."""
        for s in self._status:
            self._status[s] = NOT_SERVING
        self._shutdown = True
        self._changed.set()
        self._changed = asyncio.Event()

    async def check(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            service = HealthCheckRequest.FromString(request).service
        except Exception:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request could not be decoded")
            raise  # not reached: abort raises
        status = self._status.get(service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return bytes(HealthCheckResponse(status=status).SerializeToString())

    async def watch(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        try:
            service = HealthCheckRequest.FromString(request).service
        except Exception:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request could not be decoded")
            return
        last = -1
        while True:
            changed = self._changed
            status = self._status.get(service, SERVICE_UNKNOWN)
            if status != last:
                last = status
                yield HealthCheckResponse(status=status).SerializeToString()
            await changed.wait()

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Check": grpc.unary_unary_rpc_method_handler(self.check),
            "Watch": grpc.unary_stream_rpc_method_handler(self.watch),
        })
