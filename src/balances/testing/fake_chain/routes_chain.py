"""Chain state: ``/extended``, ``/v2/info`` and the v2 block routes."""

from __future__ import annotations

import re
from typing import Any

from balances.testing.fake_chain.blocks import Block, iso_time
from balances.testing.fake_chain.http import Ctx, Reply, api_error, bad_request
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import digest_hex

SERVER_VERSION = "stacks-blockchain-api v9.0.2 (balances fake chain)"
NODE_VERSION = "stacks-node 3.1.0.0.12 (balances fake chain)"
#: (network_id, parent_network_id, peer_version) as mainnet and testnet nodes report them.
_NETWORK_IDS = {
    "mainnet": (1, 3652501241, 402653196),
    "testnet": (2147483648, 118034699, 4207599116),
}


def block_json(block: Block, canonical: bool = True) -> dict[str, Any]:
    """The API's ``Block`` object (``canonical`` false once a reorg orphaned it)."""
    return {
        "canonical": canonical,
        "height": block.height,
        "hash": block.hash,
        "block_time": block.time,
        "block_time_iso": iso_time(block.time),
        "tenure_height": block.tenure_height,
        "index_block_hash": block.index_block_hash,
        "parent_block_hash": block.parent_block_hash,
        "parent_index_block_hash": block.parent_index_block_hash,
        "burn_block_time": block.burn_block_time,
        "burn_block_time_iso": iso_time(block.burn_block_time),
        "burn_block_hash": block.burn_block_hash,
        "burn_block_height": block.burn_block_height,
        "miner_txid": block.miner_txid,
        "tx_count": len(block.tx_ids),
        "execution_cost_read_count": 0,
        "execution_cost_read_length": 0,
        "execution_cost_runtime": 0,
        "execution_cost_write_count": 0,
        "execution_cost_write_length": 0,
    }


def status(ctx: Ctx) -> Reply:
    tip = ctx.chain.tip
    chain_tip = {
        "block_height": tip.height,
        "block_hash": tip.hash,
        "index_block_hash": tip.index_block_hash,
        "burn_block_height": tip.burn_block_height,
    }
    return Reply(body={"server_version": SERVER_VERSION, "status": "ready", "chain_tip": chain_tip})


def node_info(ctx: Ctx) -> Reply:
    tip = ctx.chain.tip
    network_id, parent_id, peer_version = _NETWORK_IDS[ctx.chain.network]
    consensus = digest_hex("consensus", tip.burn_block_height)[2:42]
    return Reply(
        body={
            "peer_version": peer_version,
            "pox_consensus": consensus,
            "burn_block_height": tip.burn_block_height,
            "stable_pox_consensus": digest_hex("consensus", tip.burn_block_height - 1)[2:42],
            "stable_burn_block_height": tip.burn_block_height - 1,
            "server_version": NODE_VERSION,
            "network_id": network_id,
            "parent_network_id": parent_id,
            "stacks_tip_height": tip.height,
            "stacks_tip": tip.hash[2:],
            "stacks_tip_consensus_hash": consensus,
            "genesis_chainstate_hash": digest_hex("genesis", ctx.chain.network)[2:],
            "unanchored_tip": None,
            "unanchored_seq": None,
            "tenure_height": tip.tenure_height,
            "exit_at_block_height": None,
            "is_fully_synced": True,
        }
    )


def latest_block(ctx: Ctx) -> Reply:
    return Reply(body=block_json(ctx.chain.tip))


def block(ctx: Ctx) -> Reply:
    text = ctx.params["height_or_hash"]
    blocks = ctx.chain.blocks
    if text == "latest":
        found: Block | None = blocks.tip
    elif re.fullmatch(r"\d{1,12}", text):
        found = blocks.at_height(int(text))
    elif re.fullmatch(r"(0x)?[a-fA-F0-9]{64}", text):
        found = blocks.by_hash(text)
    else:
        raise bad_request(
            "params/height_or_hash must be 'latest', a block height or a 0x block hash, "
            f"got {text!r}"
        )
    if found is None:
        raise api_error(404, "Block not found", f"no block {text}")
    return Reply(body=block_json(found, ctx.chain.blocks.is_canonical(found)))


def block_by_time(ctx: Ctx) -> Reply:
    text = ctx.params["timestamp"]
    if not re.fullmatch(r"\d{1,12}", text):
        raise bad_request(f"params/timestamp must be a non-negative integer, got {text!r}")
    found = ctx.chain.blocks.at_time(int(text))
    if found is None:
        raise api_error(404, "Block not found", f"no block at or before {text}")
    return Reply(body=block_json(found, ctx.chain.blocks.is_canonical(found)))


ROUTES = [
    RouteSpec("GET", "/extended", status),
    RouteSpec("GET", "/v2/info", node_info),
    RouteSpec("GET", "/extended/v2/blocks/latest", latest_block),
    RouteSpec("GET", "/extended/v2/blocks/by-block-time/{timestamp}", block_by_time),
    RouteSpec("GET", "/extended/v2/blocks/{height_or_hash}", block),
]
