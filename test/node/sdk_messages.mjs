// The official Anthropic Node SDK on the Messages API, as a user would call it:
// messages.create, messages.stream (finalMessage), a tool round trip (tool_use -> tool_result ->
// text), plain and streamed, messages.countTokens and models.list().
//   node test/node/sdk_messages.mjs BASE_URL MODEL [translated]   (BASE_URL without /v1)
// "translated": the route's backend does not speak Messages (the gateway carries it through chat
// completions), so count_tokens must be a 404 not_found_error, never an estimate.
// Exits 0 when every check holds; prints each one that failed otherwise (exit 1).
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";

const [baseURL, model, mode] = process.argv.slice(2);
if (!baseURL || !model) {
    console.error("usage: node sdk_messages.mjs BASE_URL MODEL");
    process.exit(2);
}
// authToken: null: an ANTHROPIC_AUTH_TOKEN in the environment must not add an Authorization header
const client = new Anthropic({
    baseURL, apiKey: "unused", authToken: null, maxRetries: 0, timeout: 20000,
});
const tools = [{
    name: "get_weather",
    description: "The weather in a city",
    input_schema: {
        type: "object",
        properties: { location: { type: "string" } },
        required: ["location"],
    },
}];
const question = [{ role: "user", content: "What is the weather in Paris?" }];
const failed = [];
const passed = [];

async function step(name, fn) {
    try {
        await fn();
        passed.push(name);
    } catch (e) {
        failed.push(`${name}: ${e?.message ?? e}`);
    }
}

// What a user checks on every Message.
function message(m, stop) {
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(typeof m.id, "string");
    assert.equal(m.stop_reason, stop);
    assert.ok(m.usage.input_tokens > 0, "usage.input_tokens");
    assert.ok(m.usage.output_tokens > 0, "usage.output_tokens");
}

function text(m) {
    return m.content.filter((b) => b.type === "text").map((b) => b.text).join("");
}

function toolUse(m) {
    message(m, "tool_use");
    const tu = m.content.find((b) => b.type === "tool_use");
    assert.ok(tu, `no tool_use block in ${JSON.stringify(m.content)}`);
    assert.equal(tu.name, "get_weather");
    assert.equal(typeof tu.id, "string");
    assert.equal(typeof tu.input.location, "string");
    return tu;
}

await step("messages.create", async () => {
    const m = await client.messages.create({
        model, max_tokens: 256, messages: [{ role: "user", content: "Say hello." }],
    });
    message(m, "end_turn");
    assert.equal(m.content[0].type, "text");
    assert.ok(text(m).length > 0, "no text");
});

await step("messages.stream (finalMessage)", async () => {
    const stream = client.messages.stream({
        model, max_tokens: 256, messages: [{ role: "user", content: "Say hello." }],
    });
    let streamed = "";
    stream.on("text", (t) => { streamed += t; });
    const m = await stream.finalMessage();
    message(m, "end_turn");
    assert.ok(streamed.length > 0, "no text events");
    assert.equal(text(m), streamed);
});

await step("tool round trip", async () => {
    const first = await client.messages.create({ model, max_tokens: 256, tools,
        messages: question });
    const tu = toolUse(first);
    const second = await client.messages.create({
        model, max_tokens: 256, tools,
        messages: [...question, { role: "assistant", content: first.content },
            { role: "user", content: [{ type: "tool_result", tool_use_id: tu.id,
                content: "18 degrees, sunny" }] }],
    });
    message(second, "end_turn");
    assert.ok(!second.content.some((b) => b.type === "tool_use"),
        "the model called the tool again after its result");
    assert.ok(text(second).length > 0, "no text after the tool's result");
});

await step("tool_use, streamed", async () => {
    const stream = client.messages.stream({ model, max_tokens: 256, tools, messages: question });
    let json = "";
    stream.on("inputJson", (delta) => { json += delta; });
    const m = await stream.finalMessage();
    const tu = toolUse(m);
    assert.deepEqual(JSON.parse(json), tu.input);
});

await step("messages.countTokens", async () => {
    if (mode === "translated") {
        await assert.rejects(client.messages.countTokens({ model, messages: question }),
            (e) => e.status === 404 && e.error?.error?.type === "not_found_error",
            "count_tokens off a native backend must be a 404 not_found_error");
        return;
    }
    const n = await client.messages.countTokens({ model, messages: question });
    assert.ok(Number.isInteger(n.input_tokens) && n.input_tokens > 0, JSON.stringify(n));
});

await step("models.list()", async () => {
    const ids = [];
    for await (const m of client.models.list()) {
        assert.equal(m.type, "model");
        assert.equal(typeof m.display_name, "string");
        ids.push(m.id);
    }
    assert.ok(ids.length > 0, "no model listed");
    assert.ok(ids.every((id) => typeof id === "string" && id.length > 0), JSON.stringify(ids));
});

if (failed.length > 0) {
    for (const f of failed) console.log(`FAILED ${f}`);
    console.log(`anthropic SDK (messages): ${passed.length} passed, ${failed.length} failed`);
    process.exit(1);
}
console.log(`anthropic SDK (messages): all ${passed.length} passed: ${passed.join("; ")}`);
