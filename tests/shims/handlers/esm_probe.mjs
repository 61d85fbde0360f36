// ESM test handler (neutral contract only).
export async function handler(event, context) {
  return { status: 200, headers: {}, body: { module: 'esm', type: event.type, function_name: context.functionName } };
}
