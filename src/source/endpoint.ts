import { LEGACY_OBJECT_TYPES } from './schema.js';

type Route = readonly [endpoint: string, method: 'GET' | 'POST' | 'DELETE'];

/** object_type → OpenAI-style route, as Bifrost's HTTP transport serves it. */
const ROUTES: Record<string, Route> = {
  chat_completion: ['/v1/chat/completions', 'POST'],
  chat_completion_stream: ['/v1/chat/completions', 'POST'],
  text_completion: ['/v1/completions', 'POST'],
  text_completion_stream: ['/v1/completions', 'POST'],
  embedding: ['/v1/embeddings', 'POST'],
  responses: ['/v1/responses', 'POST'],
  responses_stream: ['/v1/responses', 'POST'],
  speech: ['/v1/audio/speech', 'POST'],
  speech_stream: ['/v1/audio/speech', 'POST'],
  transcription: ['/v1/audio/transcriptions', 'POST'],
  transcription_stream: ['/v1/audio/transcriptions', 'POST'],
  image_generation: ['/v1/images/generations', 'POST'],
  image_generation_stream: ['/v1/images/generations', 'POST'],
  image_edit: ['/v1/images/edits', 'POST'],
  image_variation: ['/v1/images/variations', 'POST'],
  rerank: ['/v1/rerank', 'POST'],
  count_tokens: ['/v1/count_tokens', 'POST'],
  list_models: ['/v1/models', 'GET'],
  batch_create: ['/v1/batches', 'POST'],
  batch_list: ['/v1/batches', 'GET'],
  batch_retrieve: ['/v1/batches/{id}', 'GET'],
  batch_cancel: ['/v1/batches/{id}/cancel', 'POST'],
  batch_results: ['/v1/batches/{id}/results', 'GET'],
  file_upload: ['/v1/files', 'POST'],
  file_list: ['/v1/files', 'GET'],
  file_retrieve: ['/v1/files/{id}', 'GET'],
  file_delete: ['/v1/files/{id}', 'DELETE'],
  file_content: ['/v1/files/{id}/content', 'GET'],
  container_create: ['/v1/containers', 'POST'],
  container_list: ['/v1/containers', 'GET'],
  container_retrieve: ['/v1/containers/{id}', 'GET'],
  container_delete: ['/v1/containers/{id}', 'DELETE'],
  'realtime.turn': ['/v1/realtime', 'POST'],
  realtime: ['/v1/realtime', 'POST'],
};

export function canonicalObjectType(objectType: string): string {
  return LEGACY_OBJECT_TYPES[objectType] ?? objectType;
}

/** The route for a non-passthrough object type; unknown types have no endpoint and default to POST. */
export function routeOf(objectType: string): { endpoint: string | null; method: string } {
  const r = ROUTES[canonicalObjectType(objectType)];
  if (r) return { endpoint: r[0], method: r[1] };
  const t = canonicalObjectType(objectType);
  if (/_(list|retrieve|content|results)$/.test(t)) return { endpoint: null, method: 'GET' };
  if (/_delete$/.test(t)) return { endpoint: null, method: 'DELETE' };
  return { endpoint: null, method: 'POST' };
}

/** Every stored spelling with its route, for building a SQL CASE. */
export function allRoutes(): Array<[objectType: string, endpoint: string, method: string]> {
  const out: Array<[string, string, string]> = [];
  for (const [t, [e, m]] of Object.entries(ROUTES)) out.push([t, e, m]);
  for (const [legacy, modern] of Object.entries(LEGACY_OBJECT_TYPES)) {
    const r = ROUTES[modern];
    if (r) out.push([legacy, r[0], r[1]]);
  }
  return out;
}
