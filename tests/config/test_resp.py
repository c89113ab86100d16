"""The request path's lean Redis client (config.resp): replies in order, errors as redis-py's, timeouts that
never shift later replies, and reconnection after a lost connection."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from config.redis import redis_client
from config.resp import HotRedis, hot_redis_supported
from tests.live import free_port


def test_commands_and_pipelines_get_their_own_replies_in_the_database_of_the_url() -> None:
    async def run() -> list[object]:
        client = HotRedis(settings.REDIS_URL)
        await client.execute("SET", "resp:a", b"\x00binary")
        return [
            await client.execute("GET", "resp:a"),
            await client.pipeline([("INCR", "resp:n"), ("INCRBY", "resp:n", 5), ("HGET", "resp:none", "x")]),
        ]

    assert asyncio.run(run()) == [b"\x00binary", [1, 6, None]]
    assert redis_client().get("resp:n") == "6"  # the URL's database (the tests' own)


def test_error_replies_are_redis_pys_exceptions() -> None:
    async def run() -> tuple[list[object], object]:
        client = HotRedis(settings.REDIS_URL)
        await client.execute("SET", "resp:s", "text")
        replies = await client.pipeline([("INCR", "resp:s"), ("EVALSHA", "0" * 40, 0), ("PING",)])
        with pytest.raises(ResponseError):
            await client.execute("INCR", "resp:s")
        source = "return ARGV[1]"
        return replies, await client.evalsha("f" * 40, source, [], ["loaded on NOSCRIPT"])

    replies, evaluated = asyncio.run(run())
    assert isinstance(replies[0], ResponseError)
    assert isinstance(replies[1], NoScriptError)
    assert replies[2] == b"PONG"
    assert evaluated == b"loaded on NOSCRIPT"


def test_a_command_given_up_on_never_shifts_the_replies_of_later_ones() -> None:
    async def run() -> list[object]:
        client = HotRedis(settings.REDIS_URL)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await client.execute("BLPOP", "resp:empty", "0.3")  # answers (nil) after 0.3 s
        return [await client.execute("ECHO", "mine"), await client.execute("ECHO", "and mine")]

    assert asyncio.run(run()) == [b"mine", b"and mine"]


def test_a_lost_connection_fails_its_waiting_commands_and_the_next_one_reconnects() -> None:
    async def run() -> tuple[object, int, int]:
        client = HotRedis(settings.REDIS_URL)
        own_id = cast("int", await client.execute("CLIENT", "ID"))
        waiting = asyncio.ensure_future(client.execute("BLPOP", "resp:empty", "5"))
        await asyncio.sleep(0.05)
        redis_client().client_kill_filter(_id=str(own_id))
        async with asyncio.timeout(1):  # not the BLPOP's 5 s: the loss fails it at once
            outcome = await asyncio.gather(waiting, return_exceptions=True)
        return outcome[0], own_id, cast("int", await client.execute("CLIENT", "ID"))

    failed, old_id, new_id = asyncio.run(run())
    assert isinstance(failed, RedisConnectionError)
    assert new_id != old_id


def test_an_unreachable_redis_is_a_connection_error_at_once() -> None:
    async def run() -> None:
        await HotRedis(f"redis://127.0.0.1:{free_port()}/0").execute("PING")

    with pytest.raises(RedisConnectionError):
        asyncio.run(run())


def test_tls_urls_are_left_to_redis_py() -> None:
    assert hot_redis_supported("redis://127.0.0.1:6390/1")
    assert hot_redis_supported("unix:///tmp/redis.sock?db=2")
    assert not hot_redis_supported("rediss://cache.example.com:6380/0")
