// useApiForm runs a form's API call and sorts what went wrong: problems with a field the form
// shows go next to that field, everything else into one message above the form. The fields it
// shows are a list of names, or a test for forms whose fields are nested paths
// (spec.env[2].name).
import { useCallback, useRef, useState } from "react";
import { errorMessage, fieldErrors, type FieldErrors } from "./errors";

export function useApiForm(shownFields: string[] | ((field: string) => boolean)) {
  const [fields, setFields] = useState<FieldErrors>({});
  const [formError, setFormError] = useState("");
  const [pending, setPending] = useState(false);
  const isShown = useRef<(field: string) => boolean>(() => false);
  isShown.current = typeof shownFields === "function" ? shownFields : (field) => shownFields.includes(field);

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
          if (isShown.current(k)) shown[k] = v;
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
    [],
  );

  /** setFieldError reports a problem found before calling the API (e.g. passwords differ). */
  const setFieldError = useCallback((field: string, msg: string) => setFields((f) => ({ ...f, [field]: msg })), []);
  const reset = useCallback(() => {
    setFields({});
    setFormError("");
  }, []);

  return { fields, setFields, formError, setFormError, pending, run, setFieldError, reset };
}
