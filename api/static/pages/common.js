// Shared by the booking, manage and day-sheet pages: the API client and the words for each refusal.
"use strict";

const Needlebook = (() => {
  // The page's language (<html lang>, chosen by the server) and its words: `_("English id")` looks the
  // id up in NEEDLEBOOK_MESSAGES (/pages/i18n/<lang>.js, from the gettext catalogs: api/pages.py says
  // why it is a script of its own) and fills its %(name)s placeholders. pybabel extracts the `_()`s.
  const lang = document.documentElement.lang || "en";
  const CATALOG = window.NEEDLEBOOK_MESSAGES || {};
  // On a right-to-left page each value filled in (a clinic's Latin name, a zone, a time) is a bidi
  // isolate (FSI ... PDI), so its own direction cannot reorder the Arabic sentence around it.
  const [FSI, PDI] = document.documentElement.dir === "rtl" ? ["\u2068", "\u2069"] : ["", ""];
  function _(id, values = {}) {
    return (CATALOG[id] || id).replace(/%\((\w+)\)s/g, (whole, name) => (name in values ? FSI + String(values[name]) + PDI : whole));
  }

  const meta = (name) => {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element ? element.content : "";
  };

  // What a patient is told for each refusal code the API answers (problem+json `code`).
  const MESSAGES = {
    slot_unavailable: _("Sorry, that time was just taken by someone else. The times shown are now up to date: please choose another."),
    hold_expired: _("Your hold on this time ran out before the booking was finished, so the time was let go. Please choose a time again."),
    consultation_required: _("A first visit is a skin consultation: please book a consultation before a microneedling session."),
    contraindicated: _("This treatment cannot be booked online for you. Please call the clinic."),
    interval_too_short: _("This is too soon after your last session. Please choose a later date."),
    course_complete: _("Your course of sessions is complete. Please call the clinic to plan what comes next."),
    course_already_active: _("You already have a course of treatment under way."),
    daily_limit_reached: _("The clinic is fully booked for this treatment that day. Please choose another day."),
    too_soon: _("That time is too soon to book online. Please choose a later time."),
    too_far_ahead: _("That time is too far ahead to book online. Please choose an earlier date."),
    same_day_not_allowed: _("Same-day bookings cannot be made online. Please choose another day."),
    off_grid: _("That start time cannot be booked. Please choose one of the times shown."),
    outside_working_hours: _("That time is outside the clinic's hours. Please choose one of the times shown."),
    not_bookable_online: _("This treatment cannot be booked online. Please call the clinic."),
    not_qualified: _("No practitioner offers this treatment at that time. Please choose another time."),
    numbing_lead_too_short: _("That time leaves too little time for the numbing cream. Please choose one of the times shown."),
    device_count_too_low: _("The clinic's equipment is all in use then. Please choose another time."),
    area_not_allowed: _("That treatment area cannot be booked for this treatment."),
    cancellation_window_passed: _("It is too close to your appointment to change it online. Please call the clinic."),
    booking_link_ended: _("This personal booking link has ended. Please ask the clinic to send you a new one, or book as a new patient below."),
    manage_link_ended: _("This link no longer manages a booking: the appointment was cancelled, moved or has taken place."),
    invalid_transition: _("This booking cannot be changed any more."),
    bookings_changing: _("The clinic is updating its bookings. Please try again in a moment."),
    origin_not_allowed: _("This booking page is not set up for this web address. Please use the clinic's own booking link."),
    rate_limited: _("Too many requests from this device. Please wait a minute and try again."),
    validation_error: _("Some details need correcting: see the fields marked below."),
    not_found: _("We could not find that booking. Please check the link."),
    unauthorized: _("This booking page is not set up correctly (its key is not accepted). Please call the clinic."),
    forbidden: _("This page may not do that. Please call the clinic."),
    network: _("We could not reach the booking service. Check your connection and try again."),
  };

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
      this.code = problem.code || (status >= 500 ? "server_error" : "error");
    }
  }

  function message(error) {
    if (error instanceof ApiError) {
      return MESSAGES[error.code] || error.problem.detail || _("Something went wrong. Please try again.");
    }
    return MESSAGES.network;
  }

  async function call(key, method, path, body, headers = {}) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: {
          Authorization: `Bearer ${key}`,
          Accept: "application/json",
          "Accept-Language": lang, // the API's refusals and pre-care in the page's language
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (cause) {
      throw new ApiError(0, { code: "network", detail: String(cause) });
    }
    const text = await response.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = { detail: text };
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return { data, etag: response.headers.get("ETag") };
  }

  // Instants come with the clinic's offset: the clock a patient reads is in the string itself.
  const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const localDate = (iso) => iso.slice(0, 10);
  const localTime = (iso) => iso.slice(11, 16);
  // Other languages' day names come from the browser (Intl), with the same Western digits as the times.
  const DAY_FORMAT = new Intl.DateTimeFormat(lang, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC", numberingSystem: "latn" });
  function dayLabel(isoDate) {
    const [y, m, d] = isoDate.split("-").map(Number);
    if (lang !== "en") return DAY_FORMAT.format(new Date(Date.UTC(y, m - 1, d)));
    const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
    return `${WEEKDAYS[weekday]} ${d} ${MONTHS[m - 1]}`;
  }
  // An instant plus minutes, on the same clock (same offset) as the instant.
  function plusMinutes(iso, minutes) {
    const offset = iso.slice(19);
    const sign = offset === "Z" ? 0 : offset[0] === "-" ? -1 : 1;
    const offsetMinutes = offset === "Z" ? 0 : sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
    const shifted = new Date(Date.parse(iso) + (minutes + offsetMinutes) * 60000).toISOString();
    return shifted.slice(0, 19) + (offset || "Z");
  }

  function el(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") element.textContent = value;
      else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) element.append(child);
    return element;
  }

  // The page's one alert region: errors are announced, and focus goes there so keyboard users see it.
  function announce(text, { focus = true, kind = "error" } = {}) {
    const region = document.getElementById("alert");
    region.className = `alert ${kind}`;
    region.textContent = text;
    region.hidden = !text;
    if (text && focus) region.focus();
  }
  function status(text) {
    document.getElementById("status").textContent = text;
  }

  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A link to another page of this site in this page's language: the one the visitor chose (?lang=),
  // or any but English (so a manage link opens in the language booked in, whatever the browser says).
  function localized(path) {
    const url = new URL(path, location.origin);
    const chosen = new URLSearchParams(location.search).get("lang") || (lang === "en" ? null : lang);
    if (chosen) url.searchParams.set("lang", chosen);
    return url;
  }

  return { _, lang, localized, meta, call, message, ApiError, MESSAGES, localDate, localTime, dayLabel, plusMinutes, el, announce, status, newIdempotencyKey };
})();
