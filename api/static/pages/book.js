// The reference booking page: treatment and clinic, the week's slots, a hold with a countdown,
// the patient's details, the booking and its confirmation. Only the public API, with the page's
// publishable key.
"use strict";

(() => {
  const { _, lang, localized, meta, call, message, el, announce, status, dayLabel, localDate, localTime, newIdempotencyKey } = Needlebook;
  const key = meta("needlebook-key");
  const slug = meta("needlebook-slug");
  const $ = (id) => document.getElementById(id);

  const state = { types: [], clinics: [], practitioners: new Map(), week: 0, hold: null, timer: null, slot: null, invite: null };

  // A returning patient's personal booking link: /book/<slug>#invite=<token>. The token stays in the
  // fragment, which the browser never sends, so it reaches neither the access log nor a Referer.
  const inviteToken = () => new URLSearchParams(location.hash.slice(1)).get("invite");

  const selectedType = () => state.types.find((t) => t.id === $("treatment").value);

  function fillSelect(select, items, describe) {
    select.replaceChildren(...items.map((item) => el("option", { value: item.id, text: describe(item) })));
  }

  async function start() {
    try {
      const [types, clinics, practitioners] = await Promise.all([
        call(key, "GET", "/v1/booking/treatment-types"),
        call(key, "GET", "/v1/booking/clinics"),
        call(key, "GET", "/v1/booking/practitioners"),
      ]);
      state.types = types.data.data;
      state.clinics = clinics.data.data;
      for (const p of practitioners.data.data) state.practitioners.set(p.id, p.name);
    } catch (error) {
      announce(message(error));
      return;
    }
    await greet(inviteToken());
    if (!state.types.length || !state.clinics.length) {
      announce(_("Nothing can be booked online at the moment. Please call the clinic."));
      return;
    }
    fillSelect($("treatment"), state.types, (t) => _("%(name)s (about %(minutes)s minutes)", { name: t.name, minutes: t.numbing_minutes + t.procedure_minutes + t.aftercare_minutes }));
    fillSelect($("clinic"), state.clinics, (c) => (c.address ? `${c.name}, ${c.address}` : c.name));
    if (state.invite && state.types.some((t) => t.id === state.invite.treatment_type_id)) {
      $("treatment").value = state.invite.treatment_type_id;
    }
    describeType();
    $("treatment").addEventListener("change", describeType);
    $("clinic").addEventListener("change", () => {
      const clinic = state.clinics.find((c) => c.id === $("clinic").value);
      $("clinic-help").textContent = clinic ? _("Times are shown in the clinic's zone (%(zone)s).", { zone: clinic.timezone }) : "";
    });
    $("clinic").dispatchEvent(new Event("change"));
  }

  // With a live booking link the page books as its patient: greeted by first name, no details form.
  async function greet(token) {
    if (!token) return;
    try {
      const invite = (await call(key, "GET", `/v1/booking/links/${encodeURIComponent(token)}`)).data;
      state.invite = { ...invite, token };
    } catch (error) {
      const text = error.status === 404 ? _("We could not find this personal booking link. Please check it, or ask the clinic for a new one.") : message(error);
      announce(_("%(problem)s You can still book as a new patient.", { problem: text }), { focus: false });
      return;
    }
    const greeting = $("greeting");
    greeting.textContent = _("Welcome back, %(name)s. This is your personal booking link: choose a time and book, no forms to fill in.", { name: state.invite.first_name });
    greeting.hidden = false;
    status(greeting.textContent);
    $("details-heading").textContent = _("3. Confirm your booking");
    for (const field of $("details-form").querySelectorAll(".field")) field.hidden = true;
  }

  function describeType() {
    const type = selectedType();
    if (!type) return;
    $("treatment-help").textContent =
      type.numbing_minutes > 0
        ? _("You arrive, numbing cream is applied and works for %(numbing)s minutes, then %(needling)s minutes of needling and %(aftercare)s minutes of aftercare.", { numbing: type.numbing_minutes, needling: type.procedure_minutes, aftercare: type.aftercare_minutes })
        : type.aftercare_minutes
          ? _("%(procedure)s minutes with the practitioner, then %(aftercare)s minutes of aftercare.", { procedure: type.procedure_minutes, aftercare: type.aftercare_minutes })
          : _("%(procedure)s minutes with the practitioner.", { procedure: type.procedure_minutes });
  }

  async function loadSlots({ focus = true } = {}) {
    const type = selectedType();
    $("step-slots").hidden = false;
    $("previous-week").disabled = state.week <= 0;
    $("slots").setAttribute("aria-busy", "true");
    status(_("Looking for free times…"));
    try {
      const result = await Slots.search(key, {
        clinicId: $("clinic").value,
        treatmentTypeId: type.id,
        week: state.week,
        patientToken: state.invite && state.invite.token,
      });
      $("week-label").textContent = _("Week of %(day)s", { day: dayLabel(result.first) });
      const count = Slots.render($("slots"), result, { type, practitioners: state.practitioners, choose: hold });
      if (result.reason) announce(message(new Needlebook.ApiError(422, result.reason)), { focus: false });
      status(_("Free times in the week of %(day)s: %(count)s.", { day: dayLabel(result.first), count })); // no plural forms: the words fit any count
    } catch (error) {
      announce(message(error));
    } finally {
      $("slots").removeAttribute("aria-busy");
    }
    if (focus) $("slots-heading").focus();
  }

  async function hold(slot, description) {
    announce("");
    const body = {
      clinic_id: slot.clinic_id,
      practitioner_id: slot.practitioner_id,
      room_id: slot.room_id,
      treatment_type_id: slot.treatment_type_id,
      starts_at: slot.starts_at,
      procedure_starts_at: slot.procedure_starts_at,
    };
    if (state.invite) body.patient_token = state.invite.token;
    let held;
    try {
      held = (await call(key, "POST", "/v1/booking/holds", body, { "Idempotency-Key": newIdempotencyKey() })).data;
    } catch (error) {
      announce(message(error));
      if (error.code === "slot_unavailable") await loadSlots({ focus: false });
      return;
    }
    state.hold = held;
    state.slot = { ...slot, description };
    $("held-slot").textContent = description;
    $("step-slots").hidden = true;
    $("step-details").hidden = false;
    setFormEnabled(true);
    startCountdown(held.expires_at);
    $("details-heading").focus();
  }

  function setFormEnabled(enabled) {
    for (const field of $("details-form").querySelectorAll("input, #book")) field.disabled = !enabled || (field.id !== "book" && !!state.invite);
  }

  function startCountdown(expiresAt) {
    clearInterval(state.timer);
    const deadline = Date.parse(expiresAt);
    let announcedMinute = null;
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      const minutes = Math.floor(left / 60);
      $("countdown").textContent = `${minutes}:${String(left % 60).padStart(2, "0")}`;
      if (left > 0 && minutes !== announcedMinute && left % 60 === 0) {
        announcedMinute = minutes;
        $("countdown-status").textContent = _("Minutes left to finish booking: %(minutes)s.", { minutes });
      }
      if (left === 0) {
        clearInterval(state.timer);
        expired();
      }
    };
    tick();
    state.timer = setInterval(tick, 1000);
  }

  function expired() {
    setFormEnabled(false);
    announce(Needlebook.MESSAGES.hold_expired);
    $("change-time").focus();
  }

  function clearFieldErrors() {
    for (const p of document.querySelectorAll(".field-error")) {
      p.hidden = true;
      p.textContent = "";
    }
    for (const input of $("details-form").querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  // {"patient": {"email": ["..."]}} or {"patient.email": [...]}: the leaf field's name and its messages.
  function fieldErrors(errors, out = {}) {
    for (const [name, value] of Object.entries(errors || {})) {
      if (Array.isArray(value)) out[name.split(".").pop()] = value.join(" ");
      else if (value && typeof value === "object") fieldErrors(value, out);
      else out[name.split(".").pop()] = String(value);
    }
    return out;
  }

  function markField(name, text) {
    const target = $(`${name}-error`);
    const input = name === "accept_terms" ? $("accept-terms") : $(name);
    if (!target || !input) return false;
    target.textContent = text;
    target.hidden = false;
    input.setAttribute("aria-invalid", "true");
    return input;
  }

  async function book(event) {
    event.preventDefault();
    clearFieldErrors();
    announce("");
    if (state.invite) return submit({ hold_token: state.hold.hold_token, patient_token: state.invite.token });
    const patient = {
      name: $("name").value.trim(),
      email: $("email").value.trim(),
      accept_terms: $("accept-terms").checked,
      language: lang, // the patient reads the language they booked in (reminders, the manage link)
    };
    if ($("phone").value.trim()) patient.phone = $("phone").value.trim();
    const missing = [];
    if (!patient.name) missing.push(markField("name", _("Please enter your name.")));
    if (!patient.email) missing.push(markField("email", _("Please enter your e-mail address.")));
    if (!patient.accept_terms) missing.push(markField("accept_terms", _("Please accept the clinic's terms to book.")));
    if (missing.length) {
      announce(Needlebook.MESSAGES.validation_error, { focus: false });
      missing[0].focus();
      return;
    }
    return submit({ hold_token: state.hold.hold_token, patient });
  }

  async function submit(body) {
    $("book").disabled = true;
    status(_("Booking…"));
    let booked;
    try {
      booked = (await call(key, "POST", "/v1/booking/appointments", body, { "Idempotency-Key": newIdempotencyKey() })).data;
    } catch (error) {
      $("book").disabled = false;
      if (error.code === "validation_error") {
        const fields = Object.entries(fieldErrors(error.problem.errors)).map(([name, text]) => markField(name, text)).filter(Boolean);
        announce(message(error), { focus: !fields.length });
        if (fields.length) fields[0].focus();
        return;
      }
      if (error.code === "hold_expired" || error.code === "slot_unavailable" || error.code === "booking_link_ended" || error.status === 404) {
        clearInterval(state.timer);
        setFormEnabled(false);
      }
      announce(message(error));
      return;
    }
    clearInterval(state.timer);
    confirmation(booked);
  }

  function confirmation(booked) {
    const a = booked.appointment;
    const clinic = state.clinics.find((c) => c.id === a.clinic_id);
    const type = state.types.find((t) => t.id === a.treatment_type_id);
    const who = state.practitioners.get(a.practitioner_id);
    let visit = _("%(what)s on %(day)s at %(time)s", { what: type ? type.name : _("Your appointment"), day: dayLabel(localDate(a.starts_at)), time: localTime(a.starts_at) });
    if (who) visit = _("%(visit)s with %(practitioner)s", { visit, practitioner: who });
    if (clinic) visit = _("%(visit)s, %(place)s", { visit, place: clinic.address ? _("%(visit)s, %(place)s", { visit: clinic.name, place: clinic.address }) : clinic.name });
    $("confirmation").textContent = _("%(visit)s. Please arrive at %(time)s.", { visit, time: localTime(a.starts_at) });
    $("pre-care").replaceChildren(...(booked.pre_care || []).map((text) => el("li", { text })));
    if (!(booked.pre_care || []).length) $("pre-care").append(el("li", { text: _("Nothing special: just arrive on time.") }));
    const link = localized(`/book/${encodeURIComponent(slug)}/manage`);
    link.hash = booked.manage_token;
    $("manage-link").href = link.href;
    $("manage-link").textContent = link.href;
    for (const id of ["step-choose", "step-slots", "step-details"]) $(id).hidden = true;
    $("step-done").hidden = false;
    $("done-heading").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("choose-form").addEventListener("submit", (event) => {
      event.preventDefault();
      announce("");
      state.week = 0;
      loadSlots();
    });
    $("previous-week").addEventListener("click", () => {
      state.week = Math.max(0, state.week - 1);
      loadSlots();
    });
    $("next-week").addEventListener("click", () => {
      state.week += 1;
      loadSlots();
    });
    $("details-form").addEventListener("submit", book);
    $("change-time").addEventListener("click", () => {
      clearInterval(state.timer);
      state.hold = null;
      $("step-details").hidden = true;
      loadSlots();
    });
    start();
  });
})();
