'use strict';
// charge-payment: consumes `{order_id, amount}` messages from the `payments` queue.
//
// The payment provider's API key comes from the secret `payment-key`, as PAYMENT_API_KEY
// (`nimbus secret set payment-key`): without it nothing is charged — every message fails, and
// is retried, until a key is set. The key is never printed; a paid order records
// `payment_ref`, a signature of the order id and amount made with it (HMAC-SHA256), as a
// provider's charge id would be.
//
// Per message:
//   - a body that is not JSON, or an `amount` that is not a positive number, is a poison
//     message: it fails on every receive and ends in the dead-letter queue (max_receives: 5);
//   - `"flaky": true` simulates a transient payment-provider error: it fails while
//     `receive_count` is 1 and succeeds on a retry;
//   - otherwise the order's `status` in the `orders` table becomes `paid`.
// Failures are reported per message with `{failed: [ids]}` so that only they are retried.

const crypto = require('node:crypto');

function apiKey() {
  const key = process.env.PAYMENT_API_KEY;
  if (!key) {
    throw new Error('no payment provider key: set the secret `payment-key` (PAYMENT_API_KEY)');
  }
  return key;
}

function charge(payment, message) {
  if (typeof payment !== 'object' || payment === null || Array.isArray(payment)) {
    throw new Error('payment is not a JSON object');
  }
  if (typeof payment.order_id !== 'string' || payment.order_id === '') {
    throw new Error('payment has no order_id');
  }
  if (typeof payment.amount !== 'number' || !Number.isFinite(payment.amount) || payment.amount <= 0) {
    throw new Error(`poison message: amount ${JSON.stringify(payment.amount)} is not positive`);
  }
  if (payment.flaky === true && (message.receive_count || 1) <= 1) {
    throw new Error('payment provider unavailable (flaky, first receive)');
  }
}

async function processMessage(message, orders) {
  const payment = JSON.parse(message.body);
  charge(payment, message);
  const key = apiKey();
  const order = await orders.get({ id: payment.order_id });
  if (!order) {
    throw new Error(`order ${payment.order_id} not found`);
  }
  if (order.status === 'paid') {
    return 'already paid'; // redelivery after success: idempotent
  }
  const paymentRef = crypto
    .createHmac('sha256', key)
    .update(`${payment.order_id}:${payment.amount}`)
    .digest('hex')
    .slice(0, 24);
  await orders.put({ ...order, status: 'paid', paid_at: new Date().toISOString(), payment_ref: paymentRef });
  return 'paid';
}

exports.handler = async (event, context) => {
  const orders = context.resources.orders;
  const failed = [];
  for (const message of event.messages || []) {
    try {
      const outcome = await processMessage(message, orders);
      console.log(JSON.stringify({ charge: outcome, message_id: message.id }));
    } catch (err) {
      console.log(JSON.stringify({
        charge: 'failed',
        message_id: message.id,
        receive_count: message.receive_count,
        error: err.message,
      }));
      failed.push(message.id);
    }
  }
  return failed.length ? { failed } : undefined;
};
