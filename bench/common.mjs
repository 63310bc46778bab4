// @ts-check
/** What every benchmark reads its settings with, and the statistics they report. */

/**
 * A positive integer from the environment, or `fallback` when the variable is unset or empty.
 * @param {string} name @param {number} fallback
 */
export function setting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

/** The q-quantile of `values` (nearest rank), NaN for none. @param {number[]} values @param {number} q */
export function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** @param {number[]} values */
export const median = (values) => quantile(values, 0.5);
