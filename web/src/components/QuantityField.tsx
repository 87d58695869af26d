/** A labelled quantity input that accepts the API's spellings (`10Gi`, `500M`, digits). */
import { useEffect, useRef } from 'preact/hooks';
import { formatQuantity, parseQuantityField, valueOfField, type KindFormat } from '../format.js';

export function QuantityField(props: {
  id: string;
  label: string;
  value: string;
  onInput: (value: string) => void;
  hint?: string;
  /** Take the focus when shown (an editor opened from the keyboard continues here). */
  focus?: boolean;
  /** The kind's format, to echo what was typed as it will be read ("= 1,500 GiB"). */
  format: KindFormat;
  /** Empty is not an answer here (a quota request's preferred value). */
  required?: boolean;
}) {
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (props.focus) input.current?.focus();
  }, []);
  const parsed = parseQuantityField(props.value);
  const describedBy = `${props.id}-hint`;
  return (
    <span class="field">
      <label for={props.id}>{props.label}</label>
      <input
        ref={input}
        id={props.id}
        type="text"
        inputMode="text"
        autocomplete="off"
        spellcheck={false}
        value={props.value}
        onInput={(event) => props.onInput(event.currentTarget.value)}
        required={props.required}
        aria-invalid={!parsed.ok}
        aria-describedby={describedBy}
        size={10}
      />
      <span id={describedBy} class={parsed.ok ? 'muted hint' : 'warning-text hint'}>
        {!parsed.ok
          ? parsed.message
          : parsed.value === null
            ? props.hint ?? ''
            : `= ${formatQuantity(valueOfField(parsed.value), props.format)}`}
      </span>
    </span>
  );
}
