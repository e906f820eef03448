// Builds elements from data with textContent and attributes only: notes and sources come from
// users, so nothing here ever parses a string as HTML.

type Props = Record<string, string | undefined>;
type Child = Node | string;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  apply(node, props);
  node.append(...children);
  return node;
}

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  apply(node, props);
  node.append(...children);
  return node;
}

function apply(node: Element, props: Props) {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

export function show(node: HTMLElement, visible: boolean) {
  node.classList.toggle("hidden", !visible);
}
