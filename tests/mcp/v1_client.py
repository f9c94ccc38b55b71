"""The same checks with an older client: the official Python `mcp` 1.x, which speaks the
initialize-era protocol (2025-11-25 and before). Lists the tools and checks their schemas and
annotations, gets a tool error naming a bad argument, then (with MCP_SOURCE) deploys the
folder with progress and checks the URL answers. MCP_PROTOCOL_VERSION makes the client offer
an older version (e.g. 2025-03-26) instead of its latest."""

import asyncio
import json
import os
import sys
import urllib.request

import httpx
import mcp.types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def check(condition, what, detail=None):
    if not condition:
        sys.exit(f"CHECK FAILED: {what}\n{json.dumps(detail, indent=2, default=str)}")


async def exercise(session):
    offered = os.environ.get("MCP_PROTOCOL_VERSION")
    if offered:
        # The client sends LATEST_PROTOCOL_VERSION in its initialize request.
        mcp.types.LATEST_PROTOCOL_VERSION = offered
    init = await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    check(len(tools) == 16, "sixteen tools", sorted(tools))
    deploy = tools["deploy_repository"]
    check(deploy.inputSchema["required"] == ["source"], "deploy_repository requires source", deploy.inputSchema)
    check(deploy.annotations.readOnlyHint is False, "deploy_repository is not read-only")
    check(tools["get_logs"].annotations.readOnlyHint is True, "get_logs is read-only")
    check(tools["stop_deployment"].annotations.destructiveHint is True, "stop_deployment is destructive")
    bad = await session.call_tool("get_logs", {"deployment_id": 7})
    text = " ".join(c.text for c in bad.content if c.type == "text")
    check(bad.isError is True and "deployment_id" in text, "a bad argument is a tool error naming it", bad.model_dump())
    facts = {"protocol_version": init.protocolVersion, "tools": len(tools)}
    source = os.environ.get("MCP_SOURCE")
    if source:
        progress = []

        async def on_progress(value, total, message):
            progress.append(value)

        from datetime import timedelta

        result = await session.call_tool(
            "deploy_repository",
            {"source": source},
            read_timeout_seconds=timedelta(seconds=600),
            progress_callback=on_progress,
        )
        d = result.structuredContent or {}
        check(result.isError is not True and d.get("status") == "live", "the deployment is live", result.model_dump())
        check(len(progress) >= 2 and progress == sorted(set(progress)), "progress grows", progress)
        with urllib.request.urlopen(d["url"], timeout=30) as res:
            check("flask-basic" in res.read().decode(), "the app answers")
        facts.update(url=d["url"], progress=progress)
    print(json.dumps(facts), flush=True)


async def main():
    transport = os.environ["MCP_TRANSPORT"]
    if transport == "stdio":
        params = StdioServerParameters(command=os.environ["MCP_COMMAND"], args=["mcp"], env=dict(os.environ))
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session)
    else:
        token = os.environ.get("MCP_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(30.0, read=600.0)
        async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
            async with streamable_http_client(os.environ["MCP_URL"], http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await exercise(session)


asyncio.run(main())
