/**
 * A STAND-IN for an OpenAI-compatible chat completions server (OpenAI, Ollama, vLLM, llama.cpp
 * server), not a model: `POST /v1/chat/completions` answered with a `chat.completion` object,
 * errors as OpenAI writes them (`{error: {message, type, param, code}}`), 401 for a wrong Bearer
 * key, 404 for an unknown model or URL. The "model" answers with `answer(text)`, the text being
 * what the user message carries between `<text>` and `</text>`.
 */
import { startStandIn, type RecordedRequest, type StandIn, type StandInReply } from './stand-in.js';

export interface ChatStandInOptions {
  readonly models?: readonly string[];
  /** A Bearer key the stand-in requires (none: any or no Authorization passes, as Ollama does). */
  readonly apiKey?: string;
}

export interface ChatStandIn extends StandIn {
  /** The model's reply to the delimited text (null: a message without content, as for tool calls). Default: `defaultAnswer`. */
  answer: (text: string, request: RecordedRequest) => string | null;
  /** When set, every request gets this OpenAI-style error. */
  failure: { status: number; message: string; type?: string; code?: string } | undefined;
  /** The messages of the `n`th request (0-based). */
  messages(n: number): Array<{ role: string; content: string }>;
}

export const defaultAnswer = (text: string): string => `translated: ${text}`;

function error(status: number, message: string, type = 'invalid_request_error', param: string | null = null, code: string | null = null): StandInReply {
  return { status, body: { error: { message, type, param, code } } };
}

export async function startChatStandIn(options: ChatStandInOptions = {}): Promise<ChatStandIn> {
  const models = options.models ?? ['test-model'];
  let created = 1_700_000_000;
  const handle = (req: RecordedRequest): StandInReply => {
    if (req.method !== 'POST' || req.path !== '/v1/chat/completions') return error(404, `Unknown request URL: ${req.method} ${req.path}.`, 'invalid_request_error', null, 'unknown_url');
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return error(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
    }
    if (standIn.failure) return error(standIn.failure.status, standIn.failure.message, standIn.failure.type ?? 'server_error', null, standIn.failure.code ?? null);
    const body = req.body as { model?: unknown; messages?: unknown } | undefined;
    if (!body || typeof body.model !== 'string') return error(400, 'you must provide a model parameter', 'invalid_request_error', 'model');
    if (!Array.isArray(body.messages) || body.messages.length === 0) return error(400, "'messages' is a required property", 'invalid_request_error', 'messages');
    if (!models.includes(body.model)) return error(404, `The model \`${body.model}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found');
    const user = (body.messages as Array<{ role: string; content: string }>).filter((m) => m.role === 'user').at(-1)?.content ?? '';
    const text = /<text>\n?([\s\S]*?)\n?<\/text>/.exec(user)?.[1] ?? user;
    const content = standIn.answer(text, req);
    const completionLength = content?.length ?? 0;
    created += 1;
    return {
      status: 200,
      body: {
        id: `chatcmpl-${created}`,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: Math.ceil(user.length / 4), completion_tokens: Math.ceil(completionLength / 4), total_tokens: Math.ceil((user.length + completionLength) / 4) },
      },
    };
  };
  const base = await startStandIn((req) => handle(req));
  const standIn = Object.assign(base, {
    answer: defaultAnswer as ChatStandIn['answer'],
    failure: undefined as ChatStandIn['failure'],
    messages: (n: number) => ((base.requests[n]?.body as { messages?: Array<{ role: string; content: string }> } | undefined)?.messages ?? []),
  });
  return standIn;
}
