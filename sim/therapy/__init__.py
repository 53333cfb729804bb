"""Drugs, pharmacokinetics, dosing schedules and clinical protocol rules."""
