/**
 * The floor's forwarding, with no parsing: the floor (worker.ts) and the bench's shells
 * (../shell-worker.ts) run this same code, so the shells differ from the floor only in where
 * it runs.
 */
const RECEIVER = '"receiver_id":"';

/** The frame with `sender_id` spliced in after its last member. */
export function spliced(message: string, senderId: string): string {
  return `${message.slice(0, message.lastIndexOf("}"))},"sender_id":"${senderId}"}`;
}

/** The first `receiver_id` value as written, or undefined when there is none. */
export function receiverOf(message: string): string | undefined {
  const at = message.indexOf(RECEIVER);
  if (at < 0) return undefined;
  const start = at + RECEIVER.length;
  return message.slice(start, message.indexOf('"', start));
}
