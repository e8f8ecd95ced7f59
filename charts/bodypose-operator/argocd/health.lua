-- Argo CD health check for bodypose.dev/BodyPoseExport (argocd-cm:
-- resource.customizations.health.bodypose.dev_BodyPoseExport). Read from the
-- resource's conditions as kstatus reads them: a status for an older generation
-- is Progressing; Stalled=True is Degraded (it waits for a spec change);
-- Ready=True is Healthy; anything else (Reconciling=True, no status yet) is
-- Progressing. Followed: Argo CD's "Resource Health" docs (custom health checks
-- in Lua, the hs.status / hs.message contract).
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready, stalled, reconciling
for _, condition in ipairs(obj.status.conditions or {}) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" then stalled = condition end
  if condition.type == "Reconciling" then reconciling = condition end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
local current = reconciling or ready
if current ~= nil and current.message ~= nil and current.message ~= "" then
  hs.message = current.message
end
return hs
