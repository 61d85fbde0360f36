// A Nimbus HTTP function: GET /hello?name=you -> {"message": "hello, you"}.
exports.handler = async (event, context) => {
  const name = (event.query && event.query.name) || "world";
  return { status: 200, headers: { "content-type": "application/json" }, body: { message: `hello, ${name}` } };
};
