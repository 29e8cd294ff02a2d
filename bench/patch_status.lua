-- PATCH /…/tasks/{id}/ flipping each task pending -> in-progress -> pending ...: every request is a real status
-- change. Each wrk thread takes its own share of the ids, and cycles through them, so one task is never changed
-- by two requests at once.
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  ids = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
    if i % 2 == tid then table.insert(ids, line) end
    i = i + 1
  end
  prefix = os.getenv("BENCH_PATH_PREFIX")
  n = 0
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local id = ids[(n % #ids) + 1]
  local visit = math.floor(n / #ids)
  n = n + 1
  local status = (visit % 2 == 0) and "in-progress" or "pending"
  return wrk.format("PATCH", prefix .. id .. "/", nil, '{"status": "' .. status .. '"}')
end
