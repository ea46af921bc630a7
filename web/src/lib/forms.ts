// useApiForm runs a form's API call and sorts what went wrong: problems with a field the form
// shows go next to that field, everything else into one message above the form.
import { useCallback, useState } from "react";
import { errorMessage, fieldErrors, type FieldErrors } from "./errors";

export function useApiForm(shownFields: string[]) {
  const [fields, setFields] = useState<FieldErrors>({});
  const [formError, setFormError] = useState("");
  const [pending, setPending] = useState(false);

  const run = useCallback(
    async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
      setFields({});
      setFormError("");
      setPending(true);
      try {
        return await fn();
      } catch (err) {
        const fe = fieldErrors(err);
        const shown: FieldErrors = {};
        const rest: string[] = [];
        for (const [k, v] of Object.entries(fe)) {
          if (shownFields.includes(k)) shown[k] = v;
          else rest.push(`${k.replace(/_/g, " ")}: ${v.toLowerCase()}`);
        }
        setFields(shown);
        if (rest.length) setFormError(rest.join("; "));
        else if (!Object.keys(shown).length) setFormError(errorMessage(err));
        return undefined;
      } finally {
        setPending(false);
      }
    },
    // shownFields is a constant list per form: the first one is kept.
    [],
  );

  /** setFieldError reports a problem found before calling the API (e.g. passwords differ). */
  const setFieldError = useCallback((field: string, msg: string) => setFields((f) => ({ ...f, [field]: msg })), []);
  const reset = useCallback(() => {
    setFields({});
    setFormError("");
  }, []);

  return { fields, formError, pending, run, setFieldError, reset };
}
