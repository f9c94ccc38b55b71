"""Connects to `POST /mcp` with no token (or a wrong one, MCP_BAD_TOKEN) and checks that the
official client cannot even start a session: the server answers 401 before any MCP."""

import asyncio
import os

from common import check, connect, report


async def main():
    token = os.environ.get("MCP_BAD_TOKEN", "")
    try:
        async with connect(token=token) as client:
            await client.list_tools()
    except BaseException as e:  # the client raises an ExceptionGroup from its task group
        report(refused=True, error=repr(e)[:400])
        return
    check(False, "a session without the token is refused")


asyncio.run(main())
