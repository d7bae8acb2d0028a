package httpapi

import (
	"net/http"

	"github.com/heraldhooks/herald"
)

// maxPatientIDBytes is the longest patientId an event may carry, and so the
// longest one worth looking for.
const maxPatientIDBytes = 2048

// purgePatient erases a patient on request: every event of the instance
// about the patient in the path, with its deliveries and attempts, and
// answers with the counts.
func (s *server) purgePatient(w http.ResponseWriter, r *http.Request) error {
	if err := decodeJSON(w, r, &struct{}{}, bodyOptional); err != nil {
		return err
	}
	tenant, instance, patient := r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("patientId")
	if len(patient) > maxPatientIDBytes {
		return herald.FieldErrorf("patientId", "patientId is %d characters long; events carry at most %d, so no event is about it.", len(patient), maxPatientIDBytes)
	}
	counts, err := s.store.PurgePatient(r.Context(), tenant, instance, patient)
	if err != nil {
		return err
	}
	// Ids and counts only: the patient id is health data, and the access
	// log masks it in the path too (logPath).
	s.log.InfoContext(r.Context(), "patient purged", "request_id", w.Header().Get("X-Request-Id"),
		"client", principal(r).Client, "tenant", tenant, "instance", instance,
		"events", counts.Events, "deliveries", counts.Deliveries, "attempts", counts.Attempts)
	// The audit entry names the patient: the trail is the one record that
	// may keep which patient was erased, by whom and when.
	noteAudit(r, "patient "+patient, map[string]any{"events": counts.Events, "deliveries": counts.Deliveries, "attempts": counts.Attempts})
	return writeJSON(w, http.StatusOK, counts)
}
