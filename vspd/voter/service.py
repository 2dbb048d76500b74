"""The voter's gRPC service: what the frontend may ask of one voting wallet.

It imports keys and tickets, sets choices and reports the truth about its
node and wallet, and takes paid tickets over to carry them to the wallet
itself (vspd/voter/carrier.py). Only a client whose certificate is the frontend's gets
past the TLS handshake and the name check.
"""

import asyncio
import logging

import grpc
from google.protobuf.message import DecodeError

from rpcclient.errors import NodeUnavailable, RPCError
from rpcclient.exccd import Exccd
from rpcclient.exccwallet import ExccWallet
from rpcclient.voterclient import NO_ANSWER
from schema import voter_pb2 as pb
from schema import voter_pb2_grpc as pbg
from vspd.base.tls import FRONTEND_CN
from vspd.chain import address as addrmod
from vspd.chain import tx as txmod
from vspd.chain import wif as wifmod
from vspd.chain.errors import ChainError
from vspd.chain.params import MAX_ATOMS
from vspd.chain.rules import is_hash, key_votes_ticket, pays_fee
from vspd.version import __version__
from vspd.voter.carrier import Carrier, import_ticket
from vspd.voter.pending import PendingTicket

log = logging.getLogger("voter.service")
OUTCOME_STATUSES = ("voted", "missed", "expired", "revoked")
MAX_REQUEST_BYTES = 1 << 20  # a solo ticket is a few KB; grpc refuses more before Python reads it
MAX_CHOICES = 64  # vote choices in one request
MAX_CHOICE_CHARS = 128  # characters of an agenda or choice id
HEALTH_PART_TIMEOUT = 3.0  # per peer, inside the frontend's 5 s Health deadline (rpcclient/voterclient.py)
# A silent frontend (a partition) is noticed by our own HTTP/2 keepalive pings and its connection dropped; the
# frontend's pings (rpcclient/voterclient.py, every KEEPALIVE_TIME_MS) never count as abuse (GOAWAY too_many_pings).
KEEPALIVE_TIME_MS = 20_000  # we ping the frontend after this long without one
KEEPALIVE_TIMEOUT_MS = 10_000  # and drop its connection if the ping is unanswered this long
MIN_CLIENT_PING_INTERVAL_MS = 10_000  # pings closer than this are strikes: half the frontend's interval, so never


class ListenError(Exception):
    """The gRPC server could not bind its address."""


class Undecodable:
    """A request whose bytes are not its protobuf message: its method refuses it as INVALID_ARGUMENT.

    grpc's own handling of a deserializer error is a logged traceback and
    UNKNOWN; decoding leniently lets the method answer like any bad request.
    """

    def __init__(self, type_name: str):
        self.type_name = type_name


def _lenient(message_class):
    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError:
            return Undecodable(message_class.DESCRIPTOR.name)
    return parse


def peer_name(context) -> str:
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or [b"?"]
    return names[0].decode(errors="replace")


class VoterService(pbg.VoterServicer):
    def __init__(self, net_name: str, exccd: Exccd, wallet: ExccWallet, node_id: str = "", host_id: str = "",
                 cert_days_left: float = 0.0, carrier: Carrier | None = None):
        self.net_name = net_name
        self.exccd = exccd
        self.wallet = wallet
        self.carrier = carrier
        self.node_id, self.host_id, self.cert_days_left = node_id, host_id, cert_days_left

    async def _admit(self, request, context) -> None:
        """Only the frontend's certificate, and only requests that decoded."""
        name = peer_name(context)
        if name != FRONTEND_CN:
            log.warning("refused a call from certificate %r (only %r may call)", name, FRONTEND_CN)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "only the frontend may call a voter")
        if isinstance(request, Undecodable):
            await self._invalid(context, f"the request is not a valid {request.type_name} message")

    async def _fail(self, context, err: Exception, what: str):
        code = grpc.StatusCode.UNAVAILABLE if isinstance(err, NodeUnavailable) else grpc.StatusCode.INTERNAL
        log.warning("%s failed: %s", what, err)
        await context.abort(code, f"{what}: {err}")

    async def Health(self, request, context):
        """Node and wallet asked side by side, each within HEALTH_PART_TIMEOUT: a hung wallet or node is
        reported as such, well inside the frontend's deadline, so only a hung voter reads unreachable."""
        await self._admit(request, context)
        r = pb.HealthReply(voter_version=__version__, network=self.net_name, node_id=self.node_id,
                           host_id=self.host_id, cert_days_left=self.cert_days_left)
        await asyncio.gather(self._bounded(self._node_health(r), r, "node_error", "exccd"),
                             self._bounded(self._wallet_health(r), r, "wallet_error", "exccwallet"))
        if r.node_connected and r.wallet_connected:
            r.wallet_lag = max(0, r.node_height - r.wallet_height)
        return r

    @staticmethod
    async def _bounded(part, r: pb.HealthReply, error_field: str, who: str) -> None:
        try:
            await asyncio.wait_for(part, HEALTH_PART_TIMEOUT)
        except asyncio.TimeoutError:
            setattr(r, error_field, f"{NO_ANSWER} {HEALTH_PART_TIMEOUT:g} s ({who} hung or overloaded)")

    async def _node_health(self, r: pb.HealthReply) -> None:
        try:
            height = await self.exccd.block_count()
            r.node_best_hash = await self.exccd.rpc.call("getbestblockhash")
            try:
                info = await self.exccd.rpc.call("getblockchaininfo")
                synced = not info.get("initialblockdownload", False)
            except RPCError:
                synced = True
            r.node_height, r.node_synced, r.node_connected = height, synced, True
            r.node_version = str(self.exccd.version or "")
        except (NodeUnavailable, RPCError) as e:
            r.node_error = str(e)

    async def _wallet_health(self, r: pb.HealthReply) -> None:
        try:
            info = await self.wallet.wallet_info()
            height = await self.wallet.best_height()
            r.wallet_daemon_connected = info.daemon_connected
            r.wallet_unlocked = info.unlocked
            r.wallet_voting = info.voting
            r.wallet_manual_tickets = info.manual_tickets
            r.wallet_spv = info.spv
            r.vote_version = info.vote_version
            r.wallet_height, r.wallet_connected = height, True
            r.wallet_version = str(self.wallet.version or "")
        except (NodeUnavailable, RPCError) as e:
            r.wallet_error = str(e)

    async def _invalid(self, context, message: str):
        log.warning("refused a malformed request: %s", message)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def _check_choices(self, request, context) -> None:
        if len(request.vote_choices) > MAX_CHOICES or any(
                len(c.agenda_id) > MAX_CHOICE_CHARS or len(c.choice_id) > MAX_CHOICE_CHARS
                for c in request.vote_choices):
            await self._invalid(context, f"at most {MAX_CHOICES} vote choices of at most {MAX_CHOICE_CHARS} "
                                         f"characters each")

    async def _check_ticket(self, request, context) -> None:
        """Everything in an AddTicket request is checked before the wallet sees it."""
        if not is_hash(request.block_hash):
            await self._invalid(context, "ticket and block hashes must be 64 lower-case hex characters")
        if request.block_height < 0:
            await self._invalid(context, "block height must not be negative")
        await self._check_ticket_and_key(request, context)

    async def _check_ticket_and_key(self, request, context) -> None:
        if not is_hash(request.ticket_hash):
            await self._invalid(context, "ticket and block hashes must be 64 lower-case hex characters")
        await self._check_choices(request, context)
        try:
            t = txmod.from_hex(request.ticket_hex)
            key = wifmod.decode(request.voting_wif, self.exccd.net)
            key.pubkey()  # a key without a public key is a bad key, not a mismatch
        except ChainError as e:
            await self._invalid(context, f"bad ticket or voting key: {e}")
        if t.txid() != request.ticket_hash or not txmod.is_ticket(t, self.exccd.net):
            await self._invalid(context, "ticket_hex is not the solo ticket ticket_hash names")
        if not key_votes_ticket(key, t, self.exccd.net):
            await self._invalid(context, "the voting key does not match the ticket")

    async def AddTicket(self, request, context):
        await self._admit(request, context)
        await self._check_ticket(request, context)
        try:
            known = await import_ticket(self.wallet, request.ticket_hash, request.ticket_hex, request.block_hash,
                                        request.block_height, request.voting_wif,
                                        {c.agenda_id: c.choice_id for c in request.vote_choices})
        except (NodeUnavailable, RPCError) as e:
            await self._fail(context, e, f"add ticket {request.ticket_hash}")
        if known is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"wallet has not reached block {request.block_height}")
        if self.carrier is not None:  # the frontend confirmed the fee itself: nothing left to carry
            self.carrier.store.drop(request.ticket_hash)
        log.info("ticket %s %s", request.ticket_hash, "already known" if known else "added")
        return pb.AddTicketReply(already_known=known)

    async def _check_hand_over(self, request, context) -> None:
        """A HandOver is checked as payfee checks it: the fee must pay the expected amount to the address."""
        await self._check_ticket_and_key(request, context)
        if not is_hash(request.fee_tx_hash):
            await self._invalid(context, "fee_tx_hash must be 64 lower-case hex characters")
        if not 0 < request.fee_amount <= MAX_ATOMS:
            await self._invalid(context, f"fee_amount must be between 1 and {MAX_ATOMS} atoms")
        try:
            fee = txmod.from_hex(request.fee_tx_hex)
            fee_address = addrmod.decode(request.fee_address, self.exccd.net)
        except ChainError as e:
            await self._invalid(context, f"bad fee transaction or fee address: {e}")
        if fee.txid() != request.fee_tx_hash:
            await self._invalid(context, "fee_tx_hex is not the transaction fee_tx_hash names")
        problem = txmod.sanity_problem(fee, self.exccd.net)
        if problem:
            await self._invalid(context, f"bad fee transaction: {problem}")
        if not pays_fee(fee, fee_address, request.fee_amount):
            await self._invalid(context, f"the fee transaction does not pay {request.fee_amount} atoms to "
                                         f"{request.fee_address}")

    async def HandOver(self, request, context):
        await self._admit(request, context)
        if self.carrier is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this voter does not carry tickets")
        await self._check_hand_over(request, context)
        store = self.carrier.store
        held = store.tickets.get(request.ticket_hash)
        if held is not None and held.fee_tx_hash == request.fee_tx_hash:
            return pb.HandOverReply(state=held.state)
        # Taken even while this voter's exccd is away: the carrier needs it only later. A ticket the wallet
        # holds already is found so by the carrier's first pass, and dropped.
        if held is not None:  # the frontend took a new fee after the old one failed: one fee per ticket
            log.warning("ticket %s: fee %s replaces %s", request.ticket_hash, request.fee_tx_hash, held.fee_tx_hash)
        p = PendingTicket(ticket_hash=request.ticket_hash, ticket_hex=request.ticket_hex,
                          voting_wif=request.voting_wif,
                          vote_choices={c.agenda_id: c.choice_id for c in request.vote_choices},
                          fee_tx_hex=request.fee_tx_hex, fee_tx_hash=request.fee_tx_hash,
                          fee_address=request.fee_address, fee_amount=request.fee_amount,
                          handed_height=self.exccd.height)  # 0 if never seen: the carrier sets it
        try:
            store.put(p)  # durable before the answer
        except OSError as e:
            await self._fail(context, e, f"keep {request.ticket_hash}")
        self.carrier.wake.set()
        log.info("ticket %s handed over (fee %s)", request.ticket_hash, request.fee_tx_hash)
        return pb.HandOverReply(state=p.state)

    async def ListPending(self, request, context):
        await self._admit(request, context)
        held = self.carrier.store.tickets.values() if self.carrier is not None else ()
        return pb.ListPendingReply(tickets=[pb.PendingTicket(ticket_hash=p.ticket_hash, fee_tx_hash=p.fee_tx_hash,
                                                             state=p.state, error=p.error) for p in held])

    async def SetVoteChoices(self, request, context):
        await self._admit(request, context)
        if not is_hash(request.ticket_hash):
            await self._invalid(context, "ticket hash must be 64 lower-case hex characters")
        await self._check_choices(request, context)
        try:
            for c in request.vote_choices:
                await self.wallet.set_vote_choice(c.agenda_id, c.choice_id, request.ticket_hash)
        except (NodeUnavailable, RPCError) as e:
            await self._fail(context, e, f"set vote choices of {request.ticket_hash}")
        return pb.SetVoteChoicesReply()

    async def _tickets(self, start: int, context):
        if start < 0:
            await self._invalid(context, "start height must not be negative")
        try:
            return await self.wallet.tickets(start)
        except (NodeUnavailable, RPCError) as e:
            await self._fail(context, e, "ticketinfo")

    @staticmethod
    def _info(t) -> pb.TicketInfo:
        return pb.TicketInfo(hash=t.hash, status=t.status, block_height=t.block_height, spender=t.spender,
                             choices=[pb.VoteChoice(agenda_id=a, choice_id=c) for a, c in t.choices])

    async def ListTickets(self, request, context):
        await self._admit(request, context)
        for t in await self._tickets(request.start_height, context):
            yield self._info(t)

    async def Outcomes(self, request, context):
        await self._admit(request, context)
        tickets = await self._tickets(request.start_height, context)
        return pb.OutcomesReply(tickets=[self._info(t) for t in tickets if t.status in OUTCOME_STATUSES])


def server_credentials(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> grpc.ServerCredentials:
    """Only clients with a certificate from our CA get past the handshake."""
    return grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=ca_pem,
                                       require_client_auth=True)


def add_to_server(service: VoterService, server: grpc.aio.Server) -> None:
    """The generated add_VoterServicer_to_server, with requests decoded leniently (see Undecodable)."""
    desc = pb.DESCRIPTOR.services_by_name["Voter"]
    handlers = {}
    for m in desc.methods:
        make = grpc.unary_stream_rpc_method_handler if m.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[m.name] = make(getattr(service, m.name),
                                request_deserializer=_lenient(getattr(pb, m.input_type.name)),
                                response_serializer=getattr(pb, m.output_type.name).SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(desc.full_name, handlers),))


async def serve(service: VoterService, listen: str, creds: grpc.ServerCredentials) -> grpc.aio.Server:
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS), ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),  # any unanswered ping, not only keepalive's (60 s unset)
        ("grpc.keepalive_permit_without_calls", 1),  # the frontend's pings on an idle link are welcome, not strikes
        ("grpc.http2.max_pings_without_data", 0),  # our own pings go on while no call is in flight
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS)])
    add_to_server(service, server)
    try:
        port = server.add_secure_port(listen, creds)
    except RuntimeError as e:  # grpc's 'Failed to bind to address ...', whatever the cause
        raise ListenError(f"cannot listen on {listen}: {str(e).split(';')[0]}") from None
    if port == 0:
        raise ListenError(f"cannot listen on {listen}")
    await server.start()
    return server
