// The official OpenAI Node SDK parses what modelgate translates from another provider:
// a plain answer, a stream, and a tool call (plain and streamed), unmodified.
//   node test/node/sdk_check.mjs BASE_URL MODEL TOOL_CALL_ID
// Exits 0 when every check holds; prints what failed otherwise.
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, model, toolCallId] = process.argv.slice(2);
// fetch: Node's own (undici), not the node-fetch@2 the 4.x SDK defaults to on Node: Debian 12's
// nodejs 18.20.4+dfsg-1~deb12u3 keeps a "data" guard on idle keep-alive sockets, which node-fetch@2
// reads as a broken chunked body, so every stream failed with "Premature close" (node-fetch
// fixResponseChunkedTransferBadEnding; the 5.x SDK uses Node's fetch anyway). Keep-alive stays on.
const client = new OpenAI({
    baseURL, apiKey: "unused", maxRetries: 0, timeout: 20000, fetch: globalThis.fetch,
});
const tools = [{
    type: "function",
    function: { name: "get_weather", parameters: { type: "object", properties: {} } },
}];

// A plain answer.
const plain = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "hi" }],
});
assert.equal(plain.object, "chat.completion");
assert.equal(plain.model, model);
assert.equal(typeof plain.choices[0].message.content, "string");
assert.equal(plain.choices[0].finish_reason, "stop");
assert.ok(plain.usage.total_tokens > 0);

// A stream, with the usage chunk asked for.
let text = "", finish = null, usage = null;
const stream = await client.chat.completions.create({
    model, stream: true, stream_options: { include_usage: true },
    messages: [{ role: "user", content: "hi" }],
});
for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (c?.delta?.content) text += c.delta.content;
    if (c?.finish_reason) finish = c.finish_reason;
}
assert.equal(text, "tok0 tok1 tok2 ");
assert.equal(finish, "stop");
assert.ok(usage && usage.prompt_tokens > 0);

// A tool call, plain.
const call = await client.chat.completions.create({
    model, tools, messages: [{ role: "user", content: "weather in Paris?" }],
});
const tc = call.choices[0].message.tool_calls[0];
assert.equal(call.choices[0].finish_reason, "tool_calls");
assert.equal(tc.function.name, "get_weather");
assert.deepEqual(JSON.parse(tc.function.arguments), { location: "Paris" });

// A tool call, streamed: the SDK's own accumulator puts the fragments together.
const runner = client.beta.chat.completions.stream({
    model, tools, messages: [{ role: "user", content: "weather in Paris?" }],
});
const final = await runner.finalChatCompletion();
const stc = final.choices[0].message.tool_calls[0];
assert.equal(final.choices[0].finish_reason, "tool_calls");
assert.equal(stc.id, toolCallId);
assert.equal(stc.function.name, "get_weather");
assert.deepEqual(JSON.parse(stc.function.arguments), { location: "Paris" });

console.log("openai SDK: plain, stream, tool call and streamed tool call parsed");
