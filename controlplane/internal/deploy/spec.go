package deploy

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/secrets"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/workload"
)

// Specs are stored as AppSpec protobufs whose secrets (env values marked secret, the registry
// password) are sealed under the master key, bound to the app. This file turns what callers
// send into that form, back into plaintext for the agent, and into the masked form callers see.

// sealContext binds an app's sealed values to the app.
func sealContext(appID uuid.UUID) string { return "app:" + appID.String() }

// SealSpec returns the stored form of spec for the app. Secrets the caller marked keep take
// their sealed value from previous (the stored spec); a kept secret previous lacks is an
// error naming the field.
func SealSpec(k *secrets.Keyring, appID uuid.UUID, spec *appv1.AppSpec, previous []byte) ([]byte, error) {
	stored := proto.Clone(spec).(*appv1.AppSpec)
	old := &appv1.AppSpec{}
	if len(previous) > 0 {
		if err := proto.Unmarshal(previous, old); err != nil {
			return nil, fmt.Errorf("read stored spec: %w", err)
		}
	}
	oldSecrets := map[string]string{}
	for _, e := range old.GetEnv() {
		if e.GetSecret() {
			oldSecrets[e.GetName()] = e.GetValue()
		}
	}
	for i, e := range stored.GetEnv() {
		e.HasValue = false
		switch {
		case e.GetSecret() && e.GetKeep():
			v, ok := oldSecrets[e.GetName()]
			if !ok {
				return nil, workload.FieldError{Field: fmt.Sprintf("spec.env[%d].keep", i), Reason: "there is no stored secret " + e.GetName() + " to keep: give its value"}
			}
			e.Value, e.Keep = v, false
		case e.GetSecret():
			e.Value = k.Seal([]byte(e.GetValue()), sealContext(appID))
		default:
			e.Keep = false
		}
	}
	if ra := stored.GetRegistryAuth(); ra != nil {
		ra.HasPassword = false
		switch {
		case ra.GetPassword() != "":
			ra.Password = k.Seal([]byte(ra.GetPassword()), sealContext(appID))
		case old.GetRegistryAuth().GetPassword() != "" && old.GetRegistryAuth().GetUsername() == ra.GetUsername():
			ra.Password = old.GetRegistryAuth().GetPassword()
		}
	}
	return proto.Marshal(stored)
}

// OpenSpec reads a stored spec with its secrets in plaintext: only for the agent's command.
func OpenSpec(k *secrets.Keyring, appID uuid.UUID, stored []byte) (*appv1.AppSpec, error) {
	spec := &appv1.AppSpec{}
	if err := proto.Unmarshal(stored, spec); err != nil {
		return nil, fmt.Errorf("read stored spec: %w", err)
	}
	for _, e := range spec.GetEnv() {
		if !e.GetSecret() {
			continue
		}
		v, err := k.Open(e.GetValue(), sealContext(appID))
		if err != nil {
			return nil, fmt.Errorf("open secret %s: %w", e.GetName(), err)
		}
		e.Value = string(v)
	}
	if ra := spec.GetRegistryAuth(); ra != nil && ra.GetPassword() != "" {
		v, err := k.Open(ra.GetPassword(), sealContext(appID))
		if err != nil {
			return nil, fmt.Errorf("open registry password: %w", err)
		}
		ra.Password = string(v)
	}
	return spec, nil
}

// MaskedSpec reads a stored spec as callers see it: secret values and the registry password
// removed, with has_value / has_password saying they are set.
func MaskedSpec(stored []byte) (*appv1.AppSpec, error) {
	spec := &appv1.AppSpec{}
	if err := proto.Unmarshal(stored, spec); err != nil {
		return nil, fmt.Errorf("read stored spec: %w", err)
	}
	for _, e := range spec.GetEnv() {
		if e.GetSecret() {
			e.HasValue, e.Value = e.GetValue() != "", ""
		}
	}
	if ra := spec.GetRegistryAuth(); ra != nil {
		ra.HasPassword, ra.Password = ra.GetPassword() != "", ""
	}
	return spec, nil
}
