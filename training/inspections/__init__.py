"""The inspection task: a city's inspections, licences, complaints and weather in; a bundle that
ranks establishments out."""
