"""Lists DevGem's tools, prompts and resource templates through the official MCP client and
checks them: every tool has an object input schema that refuses unknown arguments, truthful
annotations, `wait` on the tools that wait for a deployment; then a bad argument gets a tool
error naming it, an unknown tool a protocol error, and the server keeps serving."""

import asyncio

from common import check, connect, report
from mcp.shared.exceptions import MCPError

EXPECTED = {
    # name: (read_only, destructive, idempotent, required arguments, waits)
    "deploy_repository": (False, False, False, ["source"], True),
    "get_deployment_status": (True, False, True, [], False),
    "list_deployments": (True, False, True, [], False),
    "get_logs": (True, False, True, [], False),
    "set_env_vars": (False, False, False, ["env"], False),
    "unset_env_vars": (False, True, False, ["names"], False),
    "abort_deployment": (False, True, True, [], False),
    "stop_deployment": (False, True, True, [], False),
    "redeploy": (False, False, False, [], True),
    "rollback": (False, True, False, [], True),
    "analyze_repository": (True, False, True, ["source"], False),
    "diagnose_failure": (True, False, True, [], False),
    "apply_fix": (False, False, False, [], True),
    "link_repository": (False, False, False, ["repository"], False),
    "list_links": (True, False, True, [], False),
    "unlink_repository": (False, True, True, [], False),
}


async def main():
    async with connect() as client:
        listed = await client.list_tools()
        tools = {t.name: t for t in listed.tools}
        check(sorted(tools) == sorted(EXPECTED), "the tools are the registry's", sorted(tools))
        for name, (read_only, destructive, idempotent, required, waits) in EXPECTED.items():
            tool = tools[name]
            schema = tool.input_schema
            check(schema.get("type") == "object", f"{name}: the input schema is an object", schema)
            check(schema.get("additionalProperties") is False, f"{name}: unknown arguments are refused", schema)
            check(sorted(schema.get("required", [])) == sorted(required), f"{name}: required arguments", schema)
            check(("wait" in schema.get("properties", {})) == waits, f"{name}: `wait` only on the waiting tools", schema)
            check(bool(tool.description), f"{name}: has a description")
            a = tool.annotations
            check(a is not None, f"{name}: has annotations")
            got = (a.read_only_hint, a.destructive_hint, a.idempotent_hint)
            check(got == (read_only, destructive, idempotent), f"{name}: annotations", {"got": got})
        props = tools["deploy_repository"].input_schema["properties"]
        check(props["source"]["type"] == "string", "deploy_repository.source is a string", props)
        check(props["wait"]["type"] == "boolean", "deploy_repository.wait is a boolean", props)

        # A bad argument: a tool error whose text names it; the session goes on.
        bad = await client.call_tool("get_deployment_status", {"deployment_id": "NOT AN ID!"})
        text = " ".join(c.text for c in bad.content if c.type == "text")
        check(bad.is_error is True, "a bad argument is a tool error", bad.model_dump())
        check("deployment_id" in text, "the error names the bad argument", text)
        missing = await client.call_tool("deploy_repository", {})
        missing_text = " ".join(c.text for c in missing.content if c.type == "text")
        check(missing.is_error is True and "source" in missing_text, "a missing argument is named", missing.model_dump())
        unknown_arg = await client.call_tool("list_deployments", {"colour": "blue"})
        unknown_text = " ".join(c.text for c in unknown_arg.content if c.type == "text")
        check(unknown_arg.is_error is True and "colour" in unknown_text, "an unknown argument is named", unknown_arg.model_dump())
        bad_wait = await client.call_tool("deploy_repository", {"source": "/nowhere", "wait": "soon"})
        bad_wait_text = " ".join(c.text for c in bad_wait.content if c.type == "text")
        check(bad_wait.is_error is True and "wait" in bad_wait_text, "a bad `wait` is named", bad_wait.model_dump())
        try:
            await client.call_tool("deploy_repo", {})
            check(False, "an unknown tool is a protocol error")
        except MCPError as e:
            check(e.code == -32602 and "deploy_repo" in e.error.message, "unknown tool: invalid params", e.error.model_dump())

        again = await client.list_tools()
        check(len(again.tools) == len(EXPECTED), "the server keeps serving after bad calls")
        listed_deployments = await client.call_tool("list_deployments", {})
        check(listed_deployments.is_error is not True, "list_deployments answers", listed_deployments.model_dump())

        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        check(
            sorted(prompts) == ["deploy_this_repository", "why_did_my_deployment_fail"],
            "the two prompts are listed",
            sorted(prompts),
        )
        prompt = await client.get_prompt("deploy_this_repository", {"source": "octo/shop"})
        check("octo/shop" in prompt.messages[0].content.text, "the deploy prompt names the source", prompt.model_dump())
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        check(
            sorted(templates) == ["devgem://deployments/{id}", "devgem://deployments/{id}/logs"],
            "the resource templates",
            templates,
        )
        report(
            protocol_version=client.protocol_version,
            tools=len(tools),
            bad_argument_error=text,
            server=client.server_info.name if client.server_info else None,
        )


asyncio.run(main())
