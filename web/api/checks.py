"""The shared checks of the ticket endpoints (vspd's middleware chain, §2.1, §2.5.3).

`broadcast_ticket` makes sure the node knows the ticket and its parent,
`authenticate` checks the client signature against the commitment or
alternate sign address, and `can_vote` asks the node whether the ticket
may still vote. (The size limit is web/api/request.py's.)
"""

import hashlib
import logging
from dataclasses import dataclass

from rpcclient import NodeUnavailable, RPCError
from rpcclient.errors import ERR_NO_TX_INFO
from rpcclient.exccd import RawTx
from vspd.chain import tx as txmod
from vspd.chain.errors import ChainError
from vspd.chain.message import verify_message
from vspd.chain.params import NetParams
from vspd.chain.rules import is_hash
from vspd.store import Ticket
from web.api import binding
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIError, ErrorCode

SIGNATURE_B64 = 88  # a 65-byte compact signature in base64
REMEMBERED_SIGNATURES = 4096  # each kept as addresses, signature and the body's digest: ~1 MiB at most
_VERIFIED: dict[tuple, bool] = {}
log = logging.getLogger("web.api")


def check_hash(value: str) -> str:
    if not is_hash(value, any_case=True):
        raise APIError(ErrorCode.BAD_REQUEST, "invalid ticket hash")
    return value.lower()


def internal(what: str, err: Exception) -> APIError:
    log.error("%s: %s", what, err)
    return APIError(ErrorCode.INTERNAL_ERROR)


def require_node(ctx: AppContext) -> None:
    if not ctx.exccd.connected:
        raise internal("exccd unavailable", NodeUnavailable(ctx.exccd.rpc.last_error))


async def get_ticket_tx(ctx: AppContext, ticket_hash: str) -> RawTx:
    try:
        return await ctx.exccd.get_raw_transaction(ticket_hash)
    except (NodeUnavailable, RPCError) as e:
        raise internal(f"getrawtransaction {ticket_hash}", e) from None


async def broadcast_ticket(ctx: AppContext, request: APIRequest) -> None:
    """Make the node know the ticket (and its parent), broadcasting if needed."""
    req = request.bind(binding.TICKET_BROADCAST)
    try:
        ticket = txmod.from_hex(req["tickethex"])
    except ChainError:
        raise APIError(ErrorCode.BAD_REQUEST, "cannot decode ticket hex") from None
    problem = txmod.ticket_problem(ticket, ctx.net)
    if problem:
        raise APIError(ErrorCode.INVALID_TICKET, f"not a valid ticket tx: {problem}")
    if ticket.txid() != req["tickethash"].lower():
        raise APIError(ErrorCode.BAD_REQUEST, "ticket hex does not match hash")
    try:
        parent = txmod.from_hex(req["parenthex"])
    except ChainError:
        raise APIError(ErrorCode.BAD_REQUEST, "cannot decode parent hex") from None
    require_node(ctx)
    parent_id = parent.txid()
    if not await _node_has(ctx, parent_id):
        if all(i.prev_txid != parent_id for i in ticket.inputs):
            raise APIError(ErrorCode.BAD_REQUEST, "invalid ticket parent")
        await _send(ctx, req["parenthex"], f"parent {parent_id}")
    if not await _node_has(ctx, ticket.txid()):
        await _send(ctx, req["tickethex"], f"ticket {ticket.txid()}")
    ctx.unknown_tickets.forget(ticket.txid())  # exccd knows it now


async def _node_has(ctx: AppContext, txid: str) -> bool:
    try:
        await ctx.exccd.get_raw_transaction(txid)
        return True
    except RPCError as e:
        if e.code == ERR_NO_TX_INFO:
            return False
        raise internal(f"getrawtransaction {txid}", e) from None
    except NodeUnavailable as e:
        raise internal(f"getrawtransaction {txid}", e) from None


async def _send(ctx: AppContext, tx_hex: str, what: str) -> None:
    try:
        await ctx.exccd.send_raw_transaction(tx_hex)
        log.info("broadcast %s", what)
    except (RPCError, NodeUnavailable) as e:
        log.warning("cannot broadcast %s: %s", what, e)
        raise APIError(ErrorCode.CANNOT_BROADCAST_TICKET) from None


@dataclass
class Auth:
    ticket_hash: str
    ticket: Ticket | None
    commitment_address: str
    alt_sign_address: str | None  # of a ticket we have; None if it has none


async def authenticate(ctx: AppContext, request: APIRequest) -> Auth:
    """vspAuth: the body must be signed by the ticket's commitment or alt address."""
    ticket_hash = check_hash(request.bind(binding.TICKET_HASH)["tickethash"])
    ticket, alt, raw = await _find_ticket(ctx, ticket_hash)
    if ticket is not None:
        commitment = ticket.commitment_address
    else:
        try:
            parsed = txmod.from_hex(raw.hex)
        except ChainError as e:
            raise internal(f"decode ticket {ticket_hash}", e) from None
        if not txmod.is_ticket(parsed, ctx.net):
            raise APIError(ErrorCode.INVALID_TICKET)
        commitment = str(txmod.commitment_address(parsed, ctx.net))
    signature, body = request.signature, request.read()
    if not signature:
        raise APIError(ErrorCode.BAD_REQUEST, "no VSP-Client-Signature header")
    if not signed_by(ctx, commitment, None, signature, body):
        if ticket is None:  # an alternate address may be set before the ticket is registered
            rec = await ctx.store.get_alt_sign(ticket_hash)
            alt = rec.address if rec is not None else None
        if not signed_by(ctx, commitment, alt, signature, body):
            raise APIError(ErrorCode.BAD_SIGNATURE)
    return Auth(ticket_hash, ticket, commitment, alt)


def signed_by(ctx: AppContext, commitment: str, alt: str | None, signature: str, body: bytes) -> bool:
    """vspAuth's rule: the ticket's commitment address signed the body, or its alternate sign address did."""
    return (_verified(commitment, signature, body, ctx.net)
            or (alt is not None and _verified(alt, signature, body, ctx.net)))


def _verified(address: str, signature: str, body: bytes, net: NetParams) -> bool:
    """verify_message, remembered: a wallet asking about its ticket again sends the same signed body (its
    signatures are deterministic), and what a pure function answered cannot change."""
    if len(signature) > SIGNATURE_B64:  # not a compact signature: not worth a place among the remembered
        return verify_message(address, signature, body, net)
    key = (address, signature, hashlib.sha256(body).digest(), net)
    verified = _VERIFIED.get(key)
    if verified is None:
        verified = verify_message(address, signature, body, net)
        if len(_VERIFIED) >= REMEMBERED_SIGNATURES:
            _VERIFIED.clear()
        _VERIFIED[key] = verified
    return verified


def ticket_hash_of(body: bytes) -> str:
    """The ticket hash of a request body, checked, as authenticate reads it; APIError if it is malformed."""
    return check_hash(binding.bind(body, binding.TICKET_HASH)["tickethash"])


async def _find_ticket(ctx: AppContext, ticket_hash: str) -> tuple[Ticket | None, str | None, RawTx | None]:
    """Our record of the ticket and its alternate sign address, else exccd's transaction; code 6 (remembered
    a moment) if neither knows it."""
    generation = ctx.store.ticket_inserts
    if ctx.unknown_tickets.holds(ticket_hash, generation):  # what the two lookups below said a moment ago
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    ticket, alt = await ctx.store.ticket_and_alt_sign(ticket_hash)
    if ticket is not None:
        return ticket, alt, None
    require_node(ctx)
    try:
        return None, None, await ctx.exccd.get_raw_transaction(ticket_hash)
    except RPCError as e:
        if e.code == ERR_NO_TX_INFO:  # a client mistake, not ours (upstream answers 500 here)
            ctx.unknown_tickets.add(ticket_hash, generation)
            raise APIError(ErrorCode.UNKNOWN_TICKET) from None
        raise internal(f"getrawtransaction {ticket_hash}", e) from None
    except NodeUnavailable as e:
        raise internal(f"getrawtransaction {ticket_hash}", e) from None


async def can_vote(ctx: AppContext, raw: RawTx) -> bool:
    """canTicketVote: too old, still immature, or live per the node."""
    if raw.confirmations > ctx.net.ticket_maturity + ctx.net.ticket_expiry + 1:
        return False
    if raw.confirmations <= ctx.net.ticket_maturity:
        return True
    try:
        return await ctx.exccd.exists_live_ticket(raw.txid)
    except (RPCError, NodeUnavailable) as e:
        raise internal(f"existslivetickets {raw.txid}", e) from None


async def require_can_vote(ctx: AppContext, ticket_hash: str) -> RawTx:
    raw = await get_ticket_tx(ctx, ticket_hash)
    if not await can_vote(ctx, raw):
        raise APIError(ErrorCode.TICKET_CANNOT_VOTE)
    return raw


def require_open(ctx: AppContext) -> None:
    if ctx.vspclosed:
        raise APIError(ErrorCode.VSP_CLOSED)


def intake_problem(ctx: AppContext) -> str | None:
    """Why new tickets must be refused: too few healthy voters, lagging, or no replica to hold them."""
    problem = ctx.voters.intake_problem() if ctx.voters is not None else None
    if problem is None and ctx.store is not None:
        problem = ctx.store.space_problem()  # a fee address we could not record is not one to hand out
    if problem is None and ctx.replication is not None:
        problem = ctx.replication.intake_problem()
    return problem


def require_intake(ctx: AppContext) -> None:
    """Refuse fees the VSP could not vote, or could not keep if its disk were lost."""
    problem = intake_problem(ctx)
    if problem:
        log.warning("refusing new tickets: %s", problem)
        raise APIError(ErrorCode.VSP_CLOSED, f"vsp is temporarily not accepting tickets: {problem}")


async def require_replicated(ctx: AppContext) -> None:
    """An answer about a registration is sent only once the off-site replica holds its write."""
    why = await ctx.replication.durable() if ctx.replication is not None else None
    if why:
        log.warning("refusing to acknowledge a registration: %s", why)
        raise APIError(ErrorCode.VSP_CLOSED, f"vsp is temporarily not accepting tickets: {why}")
