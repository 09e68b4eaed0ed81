"""The Redis key layout. Keys that change together share a hash tag (``{...}``), so
every multi-key script touches one cluster slot:

| key | type | tag | holds |
|---|---|---|---|
| ``acct:{A}`` | hash | address | account fields and verifiers |
| ``contacts:{A}`` | hash | address | contact address -> JSON ContactEntry |
| ``sess:{A}`` | hash | address | session id -> JSON session row |
| ``offline:{A}`` | stream | address | events waiting for A, oldest first |
| ``seen:{A}:<id>`` | string | address | message id already accepted for A (TTL) |
| ``watchers:{A}`` | set | address | owners who have A on their list |
| ``adata:{A}`` | hash | address | field -> opaque string the account's own adapter keeps (adapter_data.py) |
| ``ns:{N}:owner`` | hash | network | native id -> the address it stands for (accounts and aliases; never deleted) |
| ``ns:{N}:aliasof`` | hash | network | foreign address -> its alias in N |
| ``ns:{N}:seq`` / ``ns:{N}:regseq`` | string | network | alias / registration counters |
| ``ns:{N}:accounts`` | set | network | addresses of hosted accounts |
| ``ns:{N}:bots`` | set | network | accounts that are the gateway bot (never a user's) |
| ``persons:{p}:of`` | hash | persons | address -> person id |
| ``persons:{p}:members:<id>`` | set | persons | a person's addresses |
| ``inbox:{node}`` | stream | node | deliveries for sessions on that node |
| ``node:{node}:sessions`` | set | node | ``address|session`` held by that node |
| ``node:{node}:alive`` | string | node | the node's lease: its epoch, expires unless renewed (liveness.py) |
| ``node:{node}:epoch`` | string | node | the epoch of the node's current run |
| ``node:{node}:fenced`` | string | node | the highest epoch of the node declared dead |
| ``node:{node}:reclaim`` | string | node | held by the node reclaiming it (TTL) |
| ``node-epochs`` | string | - | the counter every epoch comes from |
| ``requeued:{A}:<id>`` | string | address | event already put back in A's offline queue by a reclaim (TTL) |
| ``nodes`` | hash | - | node id -> JSON description |
| ``audit`` | stream | - | admin changes (who, what, when) |
| ``admin:token`` | string | - | SHA-256 of the admin bearer token |
| ``login:{A}:fails`` | string | address | wrong logins within the window (TTL) |
| ``login:{A}:lock`` | string | address | present while A's logins are refused (TTL = backoff) |
"""

from __future__ import annotations

PREFIX = "gw:"


def account(address: str) -> str:
    return f"{PREFIX}acct:{{{address}}}"


def contacts(address: str) -> str:
    return f"{PREFIX}contacts:{{{address}}}"


def sessions(address: str) -> str:
    return f"{PREFIX}sess:{{{address}}}"


def offline(address: str) -> str:
    return f"{PREFIX}offline:{{{address}}}"


def seen(address: str, message_id: str) -> str:
    return f"{PREFIX}seen:{{{address}}}:{message_id}"


def requeued(address: str, event_id: str) -> str:
    return f"{PREFIX}requeued:{{{address}}}:{event_id}"


def watchers(address: str) -> str:
    return f"{PREFIX}watchers:{{{address}}}"


def adapter_data(address: str) -> str:
    return f"{PREFIX}adata:{{{address}}}"


def login_failures(address: str) -> str:
    return f"{PREFIX}login:{{{address}}}:fails"


def login_lock(address: str) -> str:
    return f"{PREFIX}login:{{{address}}}:lock"


def ns_owner(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:owner"


def ns_alias_of(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:aliasof"


def ns_seq(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:seq"


def ns_registration_seq(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:regseq"


def ns_accounts(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:accounts"


def ns_bots(network: str) -> str:
    return f"{PREFIX}ns:{{{network}}}:bots"


PERSON_OF = f"{PREFIX}persons:{{p}}:of"


def person_members(person_id: str) -> str:
    return f"{PREFIX}persons:{{p}}:members:{person_id}"


PERSON_SEQ = f"{PREFIX}persons:{{p}}:seq"


def inbox(node_id: str) -> str:
    return f"{PREFIX}inbox:{{{node_id}}}"


def node_sessions(node_id: str) -> str:
    return f"{PREFIX}node:{{{node_id}}}:sessions"


def node_alive(node_id: str) -> str:
    return f"{PREFIX}node:{{{node_id}}}:alive"


def node_reclaim_lock(node_id: str) -> str:
    return f"{PREFIX}node:{{{node_id}}}:reclaim"


NODES = f"{PREFIX}nodes"
AUDIT = f"{PREFIX}audit"
ADMIN_TOKEN = f"{PREFIX}admin:token"
INBOX_GROUP = "deliver"
