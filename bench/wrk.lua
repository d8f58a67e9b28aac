-- wrk script for bench/run.py: sends the requests of a file, split across wrk's threads, each once.
--   wrk -t T -c C -d SECONDS -s bench/wrk.lua URL -- REQUESTS_FILE T
-- REQUESTS_FILE: one request a line, "METHOD<TAB>PATH<TAB>Header: value|Header: value<TAB>BODY".
-- Thread i sends lines i, i+T, i+2T, …; a thread that has sent all its lines sends a filler
-- (GET /bench-filler, refused at once without touching the database) until wrk stops. bench/run.py
-- counts the effects in the database, so fillers never count; it sizes the files so none are needed.
-- done() prints "STATUS code=count …" (fillers left out) and latency percentiles in ms.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file, count = args[1], tonumber(args[2])
  requests = {}
  local index = 0
  for line in io.lines(file) do
    if index % count == id then
      local method, path, header_text, body = line:match("^(%u+)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {}
      for name, value in header_text:gmatch("([^:|]+): ([^|]*)") do
        headers[name] = value
      end
      if body ~= "" then
        headers["Content-Type"] = "application/json"
      else
        body = nil
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
    index = index + 1
  end
  filler = wrk.format("GET", "/bench-filler")
  sent = 0
  fillers = 0
  statuses = {}
end

function request()
  -- wrk calls request() once on the first thread's state to check the script before any thread runs
  -- (script_verify_request): that call must not use up a request.
  if id == 0 and not verified then
    verified = true
    return requests[1] or filler
  end
  sent = sent + 1
  if sent > #requests then
    fillers = fillers + 1
    return filler
  end
  return requests[sent]
end

function response(status, headers, body)
  if status ~= 404 and status ~= 401 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local filled = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
    filled = filled + thread:get("fillers")
  end
  io.write("STATUS")
  for status, count in pairs(total) do
    io.write(string.format(" %d=%d", status, count))
  end
  io.write("\n")
  io.write(string.format("FILLERS %d\n", filled))
  for _, p in ipairs({ 50, 90, 99 }) do
    io.write(string.format("P%d %.3f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("ERRORS connect=%d read=%d write=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
