// What a booking frontend writes against the types openapi-typescript generates from
// openapi/openapi.json (clients/check compiles it with tsc --strict; it is never run).
// Each answer is narrowed by its status, so a field the document does not promise for that
// status (a 409's `conflicts`, a 422's `earliest_start`, a follow-up's hold) fails to compile.
import type { components, operations } from "./generated/api";

type Schemas = components["schemas"];

// One answer per documented status: {status: 409, body: <that status's problem>} | ...
type Content<R> = R extends { content: infer C } ? C[keyof C] : undefined;
type Answer<Op extends { responses: object }> = {
  [S in keyof Op["responses"]]: { status: S; body: Content<Op["responses"][S]> };
}[keyof Op["responses"]];
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? Q : never;
type Body<Op> = Op extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

const BASE_URL = "https://clinic.example/";
const API_KEY = "nbk_...";

async function call<Op extends { responses: object }>(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  request: { query?: Query<Op>; body?: Body<Op>; headers?: Record<string, string> } = {},
): Promise<Answer<Op>> {
  const url = new URL(path.replace(/^\//, ""), BASE_URL);
  for (const [name, value] of Object.entries(request.query ?? {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json", ...request.headers },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  const body: unknown = response.status === 204 ? undefined : await response.json();
  // The one unchecked step: trusting the server to answer as its document says (the suite checks that).
  return { status: response.status, body } as Answer<Op>;
}

export async function listClinics(): Promise<Schemas["Clinic"][]> {
  const clinics: Schemas["Clinic"][] = [];
  let cursor: string | null = null;
  do {
    const answer: Answer<operations["listClinics"]> = await call<operations["listClinics"]>("GET", "/v1/clinics", {
      query: { limit: 50, ...(cursor === null ? {} : { cursor }) },
    });
    if (answer.status !== 200) throw new Error(`listClinics: ${answer.status} ${answer.body.code}`);
    clinics.push(...answer.body.data);
    cursor = answer.body.next_cursor;
  } while (cursor !== null);
  return clinics;
}

export async function microneedlingType(): Promise<Schemas["TreatmentType"] | undefined> {
  const answer = await call<operations["listTreatmentTypes"]>("GET", "/v1/treatment-types");
  if (answer.status !== 200) throw new Error(answer.body.detail);
  // `kind` is a closed vocabulary: a typo here ("microneedle") must not compile.
  return answer.body.data.find((type) => type.kind === "microneedling");
}

export async function firstSlot(
  clinic: Schemas["Clinic"],
  treatmentType: Schemas["TreatmentType"],
  patientId: string,
): Promise<Schemas["SlotOutput"] | string> {
  const answer = await call<operations["searchAvailability"]>("GET", "/v1/availability", {
    query: {
      clinic_id: clinic.id,
      treatment_type_id: treatmentType.id,
      patient_id: patientId,
      start: "2026-03-02T09:00:00+00:00",
      end: "2026-03-09T09:00:00+00:00",
      order: "earliest",
      limit: 5,
    },
  });
  if (answer.status !== 200) throw new Error(`${answer.status}: ${answer.body.detail}`);
  const [slot] = answer.body.data;
  if (slot !== undefined) {
    const local: string = slot.starts_at; // in the clinic's offset
    console.log(`${clinic.name} (${clinic.timezone}): arrive ${local}, needling ${slot.procedure_starts_at}`);
    return slot;
  }
  // No slot: the patient's rules ruled the window out; say which, and from when they may book.
  const reason = answer.body.reason;
  return reason === null ? "nothing free" : `${reason.code}: from ${reason.earliest_start ?? "?"}`;
}

export async function holdAndBook(slot: Schemas["SlotOutput"], patientId: string): Promise<Schemas["Appointment"] | null> {
  const held = await call<operations["createHold"]>("POST", "/v1/holds", {
    body: {
      clinic_id: slot.clinic_id,
      practitioner_id: slot.practitioner_id,
      room_id: slot.room_id,
      treatment_type_id: slot.treatment_type_id,
      starts_at: slot.starts_at,
      patient_id: patientId,
    },
    headers: { "Idempotency-Key": crypto.randomUUID() },
  });
  switch (held.status) {
    case 201:
      break;
    case 409: {
      // Someone else took it: show what collided (each 409 code is its own type, told apart by `code`).
      if (held.body.code === "slot_unavailable") {
        for (const conflict of held.body.conflicts) {
          console.log(`${conflict.resource} ${conflict.resource_id} busy ${conflict.starts_at}..${conflict.ends_at}`);
        }
      }
      return null;
    }
    case 422: {
      if (held.body.code === "interval_too_short") {
        const earliest: string = held.body.earliest_start;
        console.log(`Too soon after the last session: book from ${earliest}`);
      }
      return null;
    }
    default:
      throw new Error(`createHold: ${held.status}`);
  }
  const hold: Schemas["Hold"] = held.body;
  console.log(`Held ${hold.id} until ${hold.expires_at} (${hold.source})`);

  const booked = await call<operations["createAppointment"]>("POST", "/v1/appointments", {
    body: { hold_id: hold.id },
  });
  if (booked.status === 201) {
    const appointment = booked.body;
    const status: "booked" | "checked_in" | "completed" | "cancelled" | "no_show" = appointment.status;
    console.log(`Booked ${appointment.id} (${status}) at ${appointment.starts_at}`);
    return appointment;
  }
  if (booked.status === 410) console.log(`The hold lapsed: ${booked.body.detail}`);
  if (booked.status === 409 && booked.body.code === "slot_unavailable") {
    console.log(booked.body.conflicts.map((c) => c.appointment_id ?? c.hold_id));
  }
  return null;
}

export async function confirmFollowUp(followUpId: string): Promise<string | null> {
  const answer = await call<operations["getFollowUp"]>("GET", `/v1/follow-ups/${followUpId}`);
  if (answer.status !== 200) return null;
  const followUp = answer.body;
  if (followUp.status !== "proposed" || followUp.hold === null) {
    console.log(`Nothing held (${followUp.status}): ${followUp.reason?.detail ?? ""}`);
    return null;
  }
  const hold: Schemas["Hold"] = followUp.hold;
  console.log(`Proposed ${hold.starts_at}, held until ${hold.expires_at}`);
  const booked = await call<operations["createAppointment"]>("POST", "/v1/appointments", { body: { hold_id: hold.id } });
  return booked.status === 201 ? booked.body.id : null;
}
