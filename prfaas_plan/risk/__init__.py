"""Plans under uncertainty: Monte Carlo over stated distributions (`prfaas-plan risk`) and the
cheapest plan that meets its demands in a given share of them (`optimize --robust`)."""
