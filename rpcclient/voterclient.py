"""The frontend's end of the voter link: gRPC over mutual TLS to one voter.

The channel presents the frontend's client certificate and accepts only a
server certificate from our CA whose name is the voter's configured name.
"""

import logging
from dataclasses import dataclass
from typing import AsyncIterator

import grpc

from schema import voter_pb2 as pb
from schema import voter_pb2_grpc as pbg

log = logging.getLogger("voters")
CALL_TIMEOUT = 15.0
# A silent voter (a partition: no close, no reset) is noticed by HTTP/2 keepalive pings, so a dead connection is
# dropped and the next call dials again instead of waiting on it for good (docs/reliability.md, "Silent links").
KEEPALIVE_TIME_MS = 20_000  # a ping goes out after this long without one, calls in flight or not
KEEPALIVE_TIMEOUT_MS = 10_000  # a ping unanswered this long closes the connection: any sane round trip is far less
CONNECT_TIMEOUT_MS = 10_000  # a connect or TLS handshake nothing answers is given up (and retried) after this
SILENT_VOTER_BOUND = (KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS) / 1000  # seconds until a silent connection is dropped
# Names both ends of the link share (the voter's side is vspd/voter/service.py):
NO_ANSWER = "no answer within"  # the start of a hung peer's error in a health reply: the pool words it so


class VoterUnavailable(Exception):
    """The voter could not be reached, refused us, or failed the call."""


@dataclass(frozen=True)
class VoterAddress:
    name: str
    host: str
    port: int

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class VoterClient:
    def __init__(self, addr: VoterAddress, ca_pem: bytes, cert_pem: bytes, key_pem: bytes):
        self.addr = addr
        self.name = addr.name
        creds = grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=key_pem,
                                             certificate_chain=cert_pem)
        self._channel = grpc.aio.secure_channel(addr.target, creds, options=[
            ("grpc.ssl_target_name_override", addr.name), ("grpc.default_authority", addr.name),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 10000),
            ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),  # grpc's name for the connect timeout
            ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS), ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            # grpc sends no keepalive ping while another (its bandwidth probe) is unanswered; that one times out
            # after this, 60 s unless set, so it gets the keepalive's timeout too
            ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ("grpc.keepalive_permit_without_calls", 1),  # an idle link is watched too: the health poll is not a call
            ("grpc.http2.max_pings_without_data", 0)])  # else pings stop after two on a link carrying no calls
        self._stub = pbg.VoterStub(self._channel)

    def __repr__(self) -> str:
        return f"VoterClient({self.name}@{self.addr.target})"

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request, timeout: float = CALL_TIMEOUT):
        try:
            return await getattr(self._stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise VoterUnavailable(f"{self.name}: {method}: {e.code().name}: {e.details()}") from None

    async def health(self, timeout: float = 5.0) -> pb.HealthReply:
        return await self._call("Health", pb.HealthRequest(), timeout)

    async def add_ticket(self, ticket_hash: str, ticket_hex: str, block_hash: str, block_height: int,
                         voting_wif: str, choices: dict) -> bool:
        r = await self._call("AddTicket", pb.AddTicketRequest(
            ticket_hash=ticket_hash, ticket_hex=ticket_hex, block_hash=block_hash, block_height=block_height,
            voting_wif=voting_wif, vote_choices=_choices(choices)))
        return r.already_known

    async def hand_over(self, ticket_hash: str, ticket_hex: str, voting_wif: str, choices: dict, fee_tx_hex: str,
                        fee_tx_hash: str, fee_address: str, fee_amount: int) -> str:
        """Give the voter a paid ticket to carry to its wallet; returns how far the voter has it."""
        r = await self._call("HandOver", pb.HandOverRequest(
            ticket_hash=ticket_hash, ticket_hex=ticket_hex, voting_wif=voting_wif, vote_choices=_choices(choices),
            fee_tx_hex=fee_tx_hex, fee_tx_hash=fee_tx_hash, fee_address=fee_address, fee_amount=fee_amount))
        return r.state

    async def list_pending(self) -> list[pb.PendingTicket]:
        return list((await self._call("ListPending", pb.ListPendingRequest())).tickets)

    async def set_vote_choices(self, ticket_hash: str, choices: dict) -> None:
        await self._call("SetVoteChoices", pb.SetVoteChoicesRequest(ticket_hash=ticket_hash,
                                                                    vote_choices=_choices(choices)))

    async def list_tickets(self, start_height: int, timeout: float = 60.0) -> list[pb.TicketInfo]:
        return [t async for t in self.iter_tickets(start_height, timeout)]

    async def iter_tickets(self, start_height: int, timeout: float = 60.0) -> AsyncIterator[pb.TicketInfo]:
        """The wallet's tickets as they stream in (a big wallet's list need not be held at once)."""
        try:
            async for t in self._stub.ListTickets(pb.ListTicketsRequest(start_height=start_height), timeout=timeout):
                yield t
        except grpc.aio.AioRpcError as e:
            raise VoterUnavailable(f"{self.name}: ListTickets: {e.code().name}: {e.details()}") from None

    async def outcomes(self, start_height: int) -> list[pb.TicketInfo]:
        return list((await self._call("Outcomes", pb.OutcomesRequest(start_height=start_height))).tickets)


def _choices(choices: dict) -> list[pb.VoteChoice]:
    return [pb.VoteChoice(agenda_id=a, choice_id=c) for a, c in sorted(choices.items())]
