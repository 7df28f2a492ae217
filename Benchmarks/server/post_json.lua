-- wrk: POST a JSON body (env WRK_BODY, default {}) with Authorization (env WRK_AUTH).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do errors = errors + (t:get("bad") or 0) end
  io.write(string.format("BAD_RESPONSES %d\n", errors))
end
