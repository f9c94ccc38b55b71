"""Deploys a folder (MCP_SOURCE) through `deploy_repository` with a progress token, and checks
that the call returns when the deployment is live with its URL in the structured content,
that the progress notifications arrived in order, that the URL answers, and that the
deployment's status and logs read back as resources."""

import asyncio
import os
import urllib.request

from common import check, connect, report


async def main():
    source = os.environ["MCP_SOURCE"]
    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "total": total, "message": message})

    async with connect() as client:
        result = await client.call_tool(
            "deploy_repository", {"source": source}, progress_callback=on_progress
        )
        text = " ".join(c.text for c in result.content if c.type == "text")
        d = result.structured_content or {}
        check(result.is_error is not True, "deploy_repository succeeds", result.model_dump())
        check(d.get("status") == "live", "the call returns once the deployment is live", d)
        url = d.get("url")
        check(bool(url) and url in text, "the text names the URL", {"text": text, "url": url})

        check(len(progress) >= 2, "progress notifications arrived", progress)
        values = [p["progress"] for p in progress]
        check(all(a < b for a, b in zip(values, values[1:])), "progress grows with each notification", values)
        check(all(p["total"] == 100 for p in progress), "progress is out of 100", progress)

        with urllib.request.urlopen(url, timeout=30) as res:
            body = res.read().decode()
        check("flask-basic" in body, "the deployed app answers at its URL", body)

        uri = f"devgem://deployments/{d['id']}"
        status = await client.read_resource(uri)
        check('"live"' in status.contents[0].text, "the status resource says live", status.model_dump())
        logs = await client.read_resource(f"{uri}/logs")
        check("== build ==" in logs.contents[0].text, "the logs resource has the build log", logs.model_dump())
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        check(uri in listed, "the deployment is listed as a resource", listed)

        # Over stdio the session remembers its deployment: a status call without an id is
        # about this one. (HTTP is served statelessly, one server per request.)
        if os.environ["MCP_TRANSPORT"] == "stdio":
            current = await client.call_tool("get_deployment_status", {})
            check(
                (current.structured_content or {}).get("id") == d["id"],
                "a call without deployment_id acts on the session's deployment",
                current.model_dump(),
            )
        # `"wait": false`: redeploy answers at once with the new deployment, not yet live.
        quick = await client.call_tool("redeploy", {"deployment_id": d["id"], "wait": False})
        q = quick.structured_content or {}
        check(quick.is_error is not True, "redeploy with wait false succeeds", quick.model_dump())
        check(q.get("id") not in (None, d["id"]) and q.get("status") != "live", "it answers before the new one is live", q)
        report(
            wait_false_status=q.get("status"),
            protocol_version=client.protocol_version,
            id=d["id"],
            url=url,
            progress=values,
            messages=[p["message"] for p in progress],
        )


asyncio.run(main())
