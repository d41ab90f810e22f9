-- wrk script for POST /api/articles/:slug/comments (bench/conduit.py). The Authorization
-- header comes from wrk's -H option.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{"comment":{"body":"A comment posted by wrk: thank you for the article, it helped."}}]==]
