// A Vercel AI SDK app traced by the OpenTelemetry JS SDK, exporting OTLP/JSON over HTTP
// to `opik-otel serve`, which maps the spans to Opik traces.
//
// The model is the AI SDK's own mock (`ai/test`), so this runs with no network and no API key;
// swap in any provider (`openai('gpt-4o-mini')` from @ai-sdk/openai, ...) and the spans look the same.
//
//   opik-otel serve --no-grpc &                       # OTLP/HTTP on :4318, Opik from OPIK_* / ~/.opik.config
//   npm install && node index.mjs                     # OTEL_EXPORTER_OTLP_ENDPOINT defaults to http://localhost:4318

import { generateText, jsonSchema, simulateReadableStream, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

// OTLP/JSON to the sidecar: OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) chooses where.
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({
    'service.name': process.env.OTEL_SERVICE_NAME ?? 'vercel-ai-example',
    'opik.project_name': process.env.OPIK_PROJECT_NAME ?? 'otel-vercel-ai-example',
  }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

// First call asks for the weather tool, second call answers with its result.
let calls = 0;
const model = new MockLanguageModelV3({
  provider: 'mock-provider',
  modelId: 'mock-weather-model',
  doGenerate: async () => {
    calls += 1;
    if (calls === 1) {
      return {
        content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'weather', input: JSON.stringify({ city: 'Paris' }) }],
        finishReason: { unified: 'tool-calls', raw: undefined },
        usage: usage(25, 8),
        warnings: [],
      };
    }
    return {
      content: [{ type: 'text', text: 'It is 18°C and cloudy in Paris.' }],
      finishReason: { unified: 'stop', raw: undefined },
      usage: usage(40, 11),
      warnings: [],
    };
  },
  doStream: async () => ({
    stream: simulateReadableStream({
      initialDelayInMs: 50,
      chunkDelayInMs: 5,
      chunks: [
        { type: 'text-start', id: 't1' },
        { type: 'text-delta', id: 't1', delta: 'Bring ' },
        { type: 'text-delta', id: 't1', delta: 'an umbrella.' },
        { type: 'text-end', id: 't1' },
        { type: 'finish', finishReason: { unified: 'stop', raw: undefined }, usage: usage(12, 4) },
      ],
    }),
  }),
});

const weather = tool({
  description: 'Current weather in a city',
  inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
  execute: async ({ city }) => ({ city, temperatureC: 18, sky: 'cloudy' }),
});

const telemetry = (functionId) => ({
  isEnabled: true,
  functionId,
  metadata: { sessionId: 'vercel-chat-1' }, // ai.telemetry.metadata.sessionId: the Opik thread
});

const answer = await generateText({
  model,
  tools: { weather },
  stopWhen: stepCountIs(3),
  prompt: 'What is the weather in Paris?',
  experimental_telemetry: telemetry('weather-question'),
});
console.log(`generateText: ${answer.text}`);

const stream = streamText({
  model,
  prompt: 'Should I take an umbrella?',
  experimental_telemetry: telemetry('umbrella-question'),
});
let streamed = '';
for await (const delta of stream.textStream) streamed += delta;
console.log(`streamText: ${streamed}`);

await provider.shutdown(); // flush the spans to the sidecar before exiting
