-- A patient's events, for erasure on request (herald.ErasureService):
-- PurgePatient finds them by instance and patient id, in id order, without
-- reading the instance's whole history.
CREATE INDEX events_patient ON events (tenant, instance, patient_id, id);
