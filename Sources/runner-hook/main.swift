// runner-hook: the container hook's entry (container-hooks.sh execs it). See HookClient.
import RunnerHookClient

HookClient.main()
