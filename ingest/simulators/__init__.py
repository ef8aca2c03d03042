"""Deterministic simulators of the province's sector systems (iGate, iOffice, health, vnEdu…)."""
