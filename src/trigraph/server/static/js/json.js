// JSON helpers: short one-line previews, input checked against the graph's
// JSON Schema before it is sent, and what changed between two states.

export function preview(value, max = 240) {
  let text;
  try { text = typeof value === "string" ? value : JSON.stringify(value); } catch { text = String(value); }
  if (text === undefined) text = String(value);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

export function pretty(value, max = 200_000) {
  const text = JSON.stringify(value, null, 2) ?? String(value);
  return text.length > max ? text.slice(0, max) + "\n… (" + (text.length - max) + " more characters)" : text;
}

// Parse `text` as JSON; answer {value} or {error} with the line and column.
export function parseJson(text) {
  if (!text.trim()) return { error: "empty: write a JSON value, e.g. {} or null" };
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    const at = /position (\d+)/.exec(error.message);
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split("\n").length;
      const column = before.length - before.lastIndexOf("\n");
      return { error: `not JSON: ${error.message.replace(/ in JSON at position \d+.*$/, "")} (line ${line}, column ${column})` };
    }
    return { error: `not JSON: ${error.message}` };
  }
}

const typeOf = (v) => v === null ? "null" : Array.isArray(v) ? "array"
  : Number.isInteger(v) ? "integer" : typeof v;

function fits(type, value) {
  const t = typeOf(value);
  return type === t || (type === "number" && t === "integer");
}

function resolve(schema, root) {
  while (schema && typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop();
    schema = (root.$defs || root.definitions || {})[name];
  }
  return schema || {};
}

// What is wrong with `value` against JSON Schema `schema` (the subset that
// schemas of state types use: type, properties, required, items, enum,
// const, anyOf/oneOf, $ref into $defs): a list of "$.path: problem".
export function check(value, schema, root = schema, path = "$", out = []) {
  schema = resolve(schema, root);
  if (!schema || typeof schema !== "object") return out;
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    const tries = options.map((s) => check(value, s, root, path, []));
    if (!tries.some((t) => t.length === 0)) {
      out.push(tries.length === 1 ? tries[0][0] : `${path}: matches none of the ${tries.length} allowed shapes (${tries.map((t) => t[0]).join("; ")})`);
    }
    return out;
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
    return out;
  }
  if ("const" in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    out.push(`${path}: must be ${JSON.stringify(schema.const)}`);
    return out;
  }
  const types = schema.type === undefined ? null : [].concat(schema.type);
  if (types && !types.some((t) => fits(t, value))) {
    out.push(`${path}: expected ${types.join(" or ")}, got ${typeOf(value)}`);
    return out;
  }
  if (typeOf(value) === "object") {
    const props = schema.properties || {};
    for (const key of schema.required || []) {
      if (!(key in value)) out.push(`${path}: missing required key "${key}"`);
    }
    const known = Object.keys(props);
    const extra = schema.additionalProperties;
    for (const [key, item] of Object.entries(value)) {
      if (key in props) check(item, props[key], root, `${path}.${key}`, out);
      else if (known.length && extra !== true && typeof extra !== "object") {
        out.push(`${path}: unknown key "${key}" (the graph accepts: ${known.join(", ")})`);
      } else if (typeof extra === "object") check(item, extra, root, `${path}.${key}`, out);
    }
  } else if (typeOf(value) === "array" && schema.items && typeof schema.items === "object") {
    value.forEach((item, i) => check(item, schema.items, root, `${path}[${i}]`, out));
  }
  return out;
}

const same = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);
const plain = (v) => typeOf(v) === "object";

// What changed from `before` to `after`: [{path, op, before?, after?}],
// op one of "added", "removed", "changed", "appended" (a list that grew at its end).
export function diff(before, after, path = "", out = []) {
  if (same(before, after)) return out;
  if (plain(before) && plain(after)) {
    for (const key of Object.keys(after)) {
      const p = path ? `${path}.${key}` : key;
      if (!(key in before)) out.push({ path: p, op: "added", after: after[key] });
      else diff(before[key], after[key], p, out);
    }
    for (const key of Object.keys(before)) {
      if (!(key in after)) out.push({ path: path ? `${path}.${key}` : key, op: "removed", before: before[key] });
    }
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after) && after.length > before.length
      && before.every((item, i) => same(item, after[i]))) {
    out.push({ path: path || "(state)", op: "appended", after: after.slice(before.length) });
    return out;
  }
  out.push({ path: path || "(state)", op: "changed", before, after });
  return out;
}
