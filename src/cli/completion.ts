import type { Command, Option } from 'commander';

/**
 * `pi-prep completion bash|zsh|fish`: completion scripts generated from the command definitions
 * in main.ts, so a new command or flag is completed without editing this file.
 */
export function completionScript(shell: 'bash' | 'zsh' | 'fish', program: Command): string {
  const commands = program.commands.map(describe);
  if (shell === 'bash') return bash(commands);
  if (shell === 'zsh') return zsh(commands);
  return fish(commands);
}

interface Flag {
  names: string[];
  description: string;
  /** Takes a value; with choices when commander knows them. */
  value?: { name: string; choices?: string[] };
  repeatable: boolean;
}

interface Cmd {
  name: string;
  description: string;
  flags: Flag[];
  args: { name: string; choices?: string[] }[];
}

function describe(cmd: Command): Cmd {
  const flags = [...cmd.options.map(flagOf), { names: ['-h', '--help'], description: 'show help', repeatable: false }];
  const args = cmd.registeredArguments.map((a) => ({ name: a.name(), ...(a.argChoices ? { choices: a.argChoices } : {}) }));
  return { name: cmd.name(), description: oneLine(cmd.description()), flags, args };
}

function flagOf(o: Option): Flag {
  const takesValue = o.required || o.optional;
  const name = (o.flags.match(/[<[]([^>\]]+)[>\]]/)?.[1] ?? 'value').replace(/[^A-Za-z0-9_-]/g, '');
  return {
    names: [o.short, o.long].filter((n): n is string => Boolean(n)),
    description: oneLine(o.description),
    ...(takesValue ? { value: { name: name || 'value', ...(o.argChoices ? { choices: o.argChoices } : {}) } } : {}),
    repeatable: o.variadic || /repeat/i.test(o.description),
  };
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

function bash(cmds: Cmd[]): string {
  const cases = cmds.map((c) => {
    const all = c.flags.flatMap((f) => f.names).join(' ');
    const valued = c.flags.filter((f) => f.value).flatMap((f) => f.names).join(' ');
    const choices = c.flags
      .filter((f) => f.value?.choices)
      .map((f) => `        ${f.names.join('|')}) COMPREPLY=($(compgen -W "${f.value!.choices!.join(' ')}" -- "$cur")); return ;;`);
    const argChoices = c.args.find((a) => a.choices)?.choices;
    return [
      `    ${c.name})`,
      `      opts="${all}"`,
      `      valued=" ${valued} "`,
      ...(choices.length ? ['      case "$prev" in', ...choices, '      esac'] : []),
      ...(argChoices ? [`      words_="${argChoices.join(' ')}"`] : []),
      '      ;;',
    ].join('\n');
  });
  return `# bash completion for pi-prep (from \`pi-prep completion bash\`)
_pi_prep() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmd="" i opts="" valued=" " words_=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${cmds.map((c) => c.name).join(' ')} -h --help -V --version" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases.join('\n')}
  esac
  # A flag's value, or a path: leave it to bash's file completion (complete -o default).
  if [[ "$valued" == *" $prev "* ]]; then COMPREPLY=(); return; fi
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
  COMPREPLY=($(compgen -W "$words_" -- "$cur"))
}
complete -o default -F _pi_prep pi-prep
`;
}

/** Text inside a zsh _arguments description: no brackets or colons, single quotes escaped. */
const zshText = (s: string) => s.replace(/[[\]]/g, '').replace(/:/g, ' -').replace(/'/g, `'\\''`);

function zsh(cmds: Cmd[]): string {
  const spec = (f: Flag, n: string) => {
    const value = f.value ? `:${f.value.name}:${f.value.choices ? `(${f.value.choices.join(' ')})` : '_files'}` : '';
    return `'${f.repeatable ? '*' : ''}${n}[${zshText(f.description)}]${value}'`;
  };
  const cases = cmds.map((c) => {
    const specs = [
      ...c.flags.flatMap((f) => f.names.map((n) => spec(f, n))),
      ...c.args.map((a) => `':${a.name}:${a.choices ? `(${a.choices.join(' ')})` : '_files'}'`),
    ];
    return `    ${c.name})\n      _arguments -s \\\n        ${specs.join(' \\\n        ')}\n      ;;`;
  });
  return `#compdef pi-prep
# zsh completion for pi-prep (from \`pi-prep completion zsh\`)
_pi-prep() {
  local -a commands
  commands=(
${cmds.map((c) => `    '${c.name}:${zshText(c.description)}'`).join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'pi-prep command' commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
if [[ "$funcstack[1]" == "_pi-prep" ]]; then _pi-prep "$@"; else compdef _pi-prep pi-prep; fi
`;
}

const fishText = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fish(cmds: Cmd[]): string {
  const lines = [
    '# fish completion for pi-prep (from `pi-prep completion fish`)',
    'complete -c pi-prep -f',
    ...cmds.map((c) => `complete -c pi-prep -n __fish_use_subcommand -a ${c.name} -d ${fishText(c.description)}`),
  ];
  for (const c of cmds) {
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    for (const f of c.flags) {
      const names = f.names.map((n) => (n.startsWith('--') ? `-l ${n.slice(2)}` : `-s ${n.slice(1)}`)).join(' ');
      const value = f.value ? (f.value.choices ? ` -x -a ${fishText(f.value.choices.join(' '))}` : ' -r -F') : '';
      lines.push(`complete -c pi-prep ${when} ${names}${value} -d ${fishText(f.description)}`);
    }
    for (const a of c.args) lines.push(a.choices ? `complete -c pi-prep ${when} -a ${fishText(a.choices.join(' '))}` : `complete -c pi-prep ${when} -F`);
  }
  return lines.join('\n') + '\n';
}
