// A row of toggle buttons choosing one of a few options (the activity buckets, the top-tracks
// periods). Buttons with aria-pressed rather than radios: each choice starts a call, and a
// radio group would start one per arrow key.
import { el } from "../dom.ts";

export interface Choice<T> {
  value: T;
  text: string;
}

export function choiceSwitch<T>(
  label: string,
  choices: Choice<T>[],
  selected: T,
  onChoose: (value: T) => void,
): HTMLElement {
  const group = el("div", {
    role: "group",
    "aria-label": label,
    class: "inline-flex overflow-hidden rounded-lg border border-slate-700 text-xs",
  });
  const buttons = choices.map((choice) => {
    const button = el("button", {
      type: "button",
      class:
        "border-l border-slate-700 px-3 py-1 first:border-l-0 hover:bg-slate-800 aria-pressed:bg-violet-600 aria-pressed:text-white",
      "aria-pressed": String(choice.value === selected),
      text: choice.text,
    });
    button.addEventListener("click", () => {
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
      onChoose(choice.value);
    });
    return button;
  });
  group.append(...buttons);
  return group;
}
