-- wrk script for bench/booking.py: POST one line of a JSONL file per request, in order.
-- wrk -t1 -c16 -s bench/booking.lua URL -- <slots.jsonl> <first line, 0-based>
-- One thread, so one cursor: every request books a distinct slot. Prints, at the end,
-- "status <code> <count>" per status and "next <index>", the first line not sent.
local thread_handle
local bodies, cursor, counts = {}, 0, {}

function setup(thread)
  thread_handle = thread
end

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  cursor = tonumber(args[2])
  wrk.method = "POST"
end

function request()
  cursor = cursor + 1
  sent = cursor
  return wrk.format(nil, nil, nil, bodies[cursor] or bodies[#bodies])
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  statuses = counts
end

function done(summary, latency, requests)
  for code, n in pairs(thread_handle:get("statuses") or {}) do
    io.write(string.format("status %d %d\n", code, n))
  end
  io.write(string.format("next %d\n", thread_handle:get("sent") or 0))
end
