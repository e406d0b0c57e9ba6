// The official OpenAI Node SDK on the Responses API, as a user would call it:
// a text answer (then GET and DELETE of it), a stream (its events and final Response), and a
// function-tool round trip (function_call -> function_call_output with previous_response_id ->
// text), plain and streamed.
//   node test/node/sdk_responses.mjs BASE_URL MODEL [native]      (BASE_URL ends in /v1)
// "native": the backend answers /v1/responses itself; GET and DELETE of its ids are not passed
// through yet (the gateway keeps the Responses it translates), so that step is left out.
// Exits 0 when every check holds; prints each one that failed otherwise (exit 1).
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, model, mode] = process.argv.slice(2);
if (!baseURL || !model) {
    console.error("usage: node sdk_responses.mjs BASE_URL MODEL");
    process.exit(2);
}
// fetch: Node's own (undici), not the node-fetch@2 the 4.x SDK defaults to on Node: Debian 12's
// nodejs 18.20.4+dfsg-1~deb12u3 keeps a "data" guard on idle keep-alive sockets, which node-fetch@2
// reads as a broken chunked body, so every stream failed with "Premature close" (node-fetch
// fixResponseChunkedTransferBadEnding; the 5.x SDK uses Node's fetch anyway). Keep-alive stays on.
const client = new OpenAI({
    baseURL, apiKey: "unused", maxRetries: 0, timeout: 20000, fetch: globalThis.fetch,
});
const tools = [{
    type: "function",
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
        type: "object",
        properties: { location: { type: "string" } },
        required: ["location"],
    },
    strict: false,
}];
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

// What a user checks on every finished Response.
function completed(r) {
    assert.equal(r.object, "response");
    assert.equal(typeof r.id, "string");
    assert.equal(r.status, "completed");
    assert.ok(Array.isArray(r.output) && r.output.length > 0, "output is empty");
    assert.ok(r.usage.input_tokens > 0, "usage.input_tokens");
    assert.ok(r.usage.output_tokens > 0, "usage.output_tokens");
    assert.ok(r.usage.total_tokens >= r.usage.input_tokens + r.usage.output_tokens,
        "usage.total_tokens");
}

// The Response's text: output_text where the SDK adds it (responses.create), else what that
// convenience is made of (responses.retrieve and finalResponse() of 4.x leave it out).
function outputText(r) {
    if (typeof r.output_text === "string") return r.output_text;
    return r.output.filter((o) => o.type === "message")
        .flatMap((o) => o.content.filter((c) => c.type === "output_text").map((c) => c.text))
        .join("");
}

function functionCall(r) {
    const call = r.output.find((o) => o.type === "function_call");
    assert.ok(call, `no function_call item in output: ${JSON.stringify(r.output)}`);
    assert.equal(call.name, "get_weather");
    assert.equal(typeof call.call_id, "string");
    assert.equal(typeof JSON.parse(call.arguments).location, "string");
    return call;
}

let textId = null;
await step("responses.create (text)", async () => {
    const r = await client.responses.create({ model, input: "Say hello." });
    completed(r);
    assert.equal(typeof r.output_text, "string");
    assert.ok(r.output_text.length > 0, "output_text is empty");
    assert.equal(r.output_text, outputText({ output: r.output }));
    assert.equal(r.output[0].type, "message");
    assert.equal(r.output[0].role, "assistant");
    textId = r.id;
});

if (mode !== "native") await step("responses.retrieve and responses.del", async () => {
    assert.ok(textId, "no Response to retrieve");
    const got = await client.responses.retrieve(textId);
    assert.equal(got.id, textId);
    assert.ok(outputText(got).length > 0, "retrieved text is empty");
    await client.responses.del(textId);
    await assert.rejects(client.responses.retrieve(textId), (e) => e.status === 404,
        "a deleted Response must be 404");
});

await step("responses.stream (text)", async () => {
    const stream = client.responses.stream({ model, input: "Say hello." });
    const types = [];
    let deltas = "", last = -1;
    for await (const ev of stream) {
        types.push(ev.type);
        assert.ok(ev.sequence_number > last, `sequence_number ${ev.sequence_number} after ${last}`);
        last = ev.sequence_number;
        if (ev.type === "response.output_text.delta") deltas += ev.delta;
    }
    const final = await stream.finalResponse();
    completed(final);
    assert.equal(types[0], "response.created");
    assert.equal(types.at(-1), "response.completed");
    for (const t of ["response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done"]) {
        assert.ok(types.includes(t), `no ${t} event in ${types.join(",")}`);
    }
    assert.ok(deltas.length > 0, "no text deltas");
    assert.equal(outputText(final), deltas);
});

await step("function-tool round trip", async () => {
    const first = await client.responses.create({
        model, tools, input: "What is the weather in Paris?",
    });
    completed(first);
    const call = functionCall(first);
    const second = await client.responses.create({
        model, tools, previous_response_id: first.id,
        input: [{ type: "function_call_output", call_id: call.call_id,
            output: JSON.stringify({ temperature_c: 18 }) }],
    });
    completed(second);
    assert.equal(second.previous_response_id, first.id);
    assert.ok(!second.output.some((o) => o.type === "function_call"),
        "the model called the tool again after its result");
    assert.ok(outputText(second).length > 0, "no text after the tool's result");
});

await step("function call, streamed", async () => {
    const stream = client.responses.stream({ model, tools, input: "Weather in Paris?" });
    let args = "";
    stream.on("response.function_call_arguments.delta", (ev) => { args += ev.delta; });
    const final = await stream.finalResponse();
    completed(final);
    const call = functionCall(final);
    assert.equal(args, call.arguments);
});

if (failed.length > 0) {
    for (const f of failed) console.log(`FAILED ${f}`);
    console.log(`openai SDK (responses): ${passed.length} passed, ${failed.length} failed`);
    process.exit(1);
}
console.log(`openai SDK (responses): all ${passed.length} passed: ${passed.join("; ")}`);
