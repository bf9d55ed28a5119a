"""The service's use cases: enrolment, step-up sessions, decisions, retention, erasure."""
